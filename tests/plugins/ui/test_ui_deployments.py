"""Deployments in the UI: the records MLTrack keeps, with live status asked of the provider."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from .ui_helpers import UI, serve

SECRET = "s3cret-value-never-shown"
URL_PASSWORD = "url-pa55word-never-shown"
QUERY_TOKEN = "query-t0ken-never-shown"


def save_scorer_record(uri: str, folder: Path, **changes: Any) -> None:
    """A model version "scorer" v1 with a `local` deployment record whose server process is gone."""
    from dataclasses import replace

    from mlflow import MlflowClient

    from mltrack.deployment.deployments import Deployment, save_record
    from mltrack.deployment.providers import DeploymentState

    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("deploy-ui"))
    client.create_registered_model("scorer")
    client.create_model_version("scorer", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    log = folder / "server.log"
    log.write_text("listening\nshutting down\n")
    record = Deployment(
        name="scorer",
        provider="local",
        model_name="scorer",
        model_version=1,
        alias=None,
        config={"port": 0, "api_token": SECRET},
        state=DeploymentState.READY,
        url="http://127.0.0.1:9",
        message="serving",
        details={"pid": 2**22 + 12345, "host": socket.gethostname(), "log_file": str(log), "started_at": 0},
    )
    save_record(replace(record, **changes))


@pytest.fixture
def deployed(sqlite_uri: str, tmp_path: Path) -> str:
    save_scorer_record(sqlite_uri, tmp_path)
    return sqlite_uri


def test_recorded_deployments_are_listed(deployed: str) -> None:
    with serve(tracking_uri=deployed) as server:
        answer = UI(server.url).ok("/api/deployments")
    assert answer["available"]
    [row] = answer["deployments"]
    assert row["id"] == "local/scorer" and row["model_name"] == "scorer" and row["model_version"] == 1
    assert row["status"] == "ready"


def test_refresh_asks_the_provider_for_live_status(deployed: str) -> None:
    with serve(tracking_uri=deployed) as server:
        [row] = UI(server.url).ok("/api/deployments?refresh=true")["deployments"]
    assert row["status"] == "failed" and "is gone" in row["message"]
    assert row["refresh_error"] is None


def test_no_secret_reaches_the_browser(deployed: str) -> None:
    with serve(tracking_uri=deployed) as server:
        ui = UI(server.url)
        for path in (
            "/api/deployments",
            "/api/deployments?refresh=true",
            "/api/model?" + urlencode({"name": "scorer"}),
        ):
            _status, _headers, body = ui.request(path)
            assert SECRET.encode() not in body, path


def test_the_model_page_shows_what_each_version_serves(deployed: str) -> None:
    with serve(tracking_uri=deployed) as server:
        detail = UI(server.url).ok("/api/model?" + urlencode({"name": "scorer"}))
    [version] = detail["versions"]
    assert [d["id"] for d in version["deployments"]] == ["local/scorer"]
    assert not any(k.startswith("mltrack.deployment") for k in version["tags"])  # shown as deployments instead


def test_a_core_without_deployments_gives_an_empty_page(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrack_ui import deployments_view

    monkeypatch.setattr(deployments_view, "deployments_module", lambda: None)
    answer = ui.ok("/api/deployments")
    assert answer == {"deployments": [], "available": False, "reason": "this mltrack-core has no deployments module"}


def test_passwords_inside_values_are_masked(sqlite_uri: str, tmp_path: Path) -> None:
    save_scorer_record(
        sqlite_uri,
        tmp_path,
        config={"port": 0, "env": {"DATABASE_URL": f"postgresql://app:{URL_PASSWORD}@db/x", "MODE": "fast"}},
        url=f"http://127.0.0.1:9/?token={QUERY_TOKEN}",
        message=f"could not reach redis://:{URL_PASSWORD}@cache:6379/0",
    )
    with serve(tracking_uri=sqlite_uri) as server:
        ui = UI(server.url)
        [row] = ui.ok("/api/deployments")["deployments"]
        for path in ("/api/deployments", "/api/model?" + urlencode({"name": "scorer"})):
            _status, _headers, body = ui.request(path)
            assert URL_PASSWORD.encode() not in body and QUERY_TOKEN.encode() not in body, path
    assert row["config"]["env"] == {"DATABASE_URL": "postgresql://app:********@db/x", "MODE": "fast"}
    assert row["url"] == "http://127.0.0.1:9/?token=********"
    assert row["message"] == "could not reach redis://:********@cache:6379/0"


def test_a_record_holding_nan_is_served_as_strict_json(sqlite_uri: str, tmp_path: Path) -> None:
    save_scorer_record(sqlite_uri, tmp_path, details={"p99_ms": float("nan"), "max_ms": float("inf"), "pid": 1})
    with serve(tracking_uri=sqlite_uri) as server:
        [row] = UI(server.url).ok("/api/deployments")["deployments"]  # UI.ok refuses NaN/Infinity tokens
    assert row["details"] == {"p99_ms": None, "max_ms": None, "pid": 1}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"password": "x", "region": "eu"}, {"password": "********", "region": "eu"}),
        ({"nested": {"aws_secret_access_key": "k"}}, {"nested": {"aws_secret_access_key": "********"}}),
        ({"token": None}, {"token": None}),
        (
            {"env": {"DATABASE_URL": "postgresql://app:pw@db/x"}},
            {"env": {"DATABASE_URL": "postgresql://app:********@db/x"}},
        ),
        (["mysql://h/db?user=a&password=b"], ["mysql://h/db?user=a&password=********"]),
    ],
)
def test_the_ui_masks_with_cores_public_helper(value: object, shown: object) -> None:
    from mltrack.config.secrets import mask_secrets

    assert mask_secrets(value) == shown
