"""Deployments in the UI: the records MLTrack keeps, with live status asked of the provider."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlencode

import pytest

from .ui_helpers import UI, serve

SECRET = "s3cret-value-never-shown"


@pytest.fixture
def deployed(sqlite_uri: str, tmp_path: Path) -> str:
    """A model version with a `local` deployment record whose server process is gone."""
    from mlflow import MlflowClient

    from mltrack.deployments import Deployment, save_record
    from mltrack.providers import DeploymentState

    client = MlflowClient(tracking_uri=sqlite_uri)
    run = client.create_run(client.create_experiment("deploy-ui"))
    client.create_registered_model("scorer")
    client.create_model_version("scorer", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    log = tmp_path / "server.log"
    log.write_text("listening\nshutting down\n")
    save_record(
        Deployment(
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
    )
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


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"password": "x", "region": "eu"}, {"password": "********", "region": "eu"}),
        ({"nested": {"aws_secret_access_key": "k"}}, {"nested": {"aws_secret_access_key": "********"}}),
        ({"token": None}, {"token": None}),
    ],
)
def test_secret_looking_keys_are_masked(value: dict[str, object], shown: dict[str, object]) -> None:
    from mltrack_ui.deployments_view import scrub

    assert scrub(value) == shown
