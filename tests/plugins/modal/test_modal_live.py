"""Opt-in: the whole cycle against Modal itself. Runs only when MODAL_TOKEN_ID (and MODAL_TOKEN_SECRET)
are set; it deploys a small CPU endpoint (at most one container, idle after 2 s), predicts, reads
logs and lists the app, then stops it. Costs a few cents of Modal time."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

import mltrack
from mltrack.deployment.deployments import delete_deployment, get_provider
from mltrack.deployment.providers import DeploymentState

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET")),
        reason="live Modal test: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET to run it",
    ),
]

ROWS = [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]


class ScaledSum:
    def predict(self, rows: Any) -> list[float]:
        records = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
        return [2.0 * (row["x"] + row["y"]) for row in records]


def test_a_real_deploy_serves_predictions_lists_logs_and_stops(sqlite_uri: str) -> None:
    with mltrack.start_run():
        info = mltrack.log_model(ScaledSum(), "model", input_example=ROWS[:1])
    mltrack.register_model(info.model_uri, "live-check")
    app_name = f"mltrack-live-{uuid.uuid4().hex[:8]}"
    config = {"app_name": app_name, "max_containers": 1, "scaledown_window": 2, "startup_timeout_s": 900}
    deployment = mltrack.deploy(model_name="live-check", provider="modal", config=config, timeout=900)
    try:
        assert deployment.state is DeploymentState.READY, deployment.message
        assert deployment.url is not None and deployment.url.startswith("https://")
        assert deployment.predict(ROWS) == pytest.approx([6.0, 14.0])
        assert app_name in {s.details["app_name"] for s in get_provider("modal").list()}
        assert deployment.logs(tail=50)[0].startswith("Modal logs: https://modal.com/")
    finally:
        assert delete_deployment(deployment.id).state is DeploymentState.DELETED
    assert delete_deployment(deployment.id).state is DeploymentState.DELETED  # idempotent
    assert app_name not in {s.details["app_name"] for s in get_provider("modal").list()}
