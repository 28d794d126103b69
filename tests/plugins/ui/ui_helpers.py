"""Helpers shared by the UI tests (a module of its own: every test folder has a ``conftest``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "ui"
SECRET_TEXT = "this file is outside every artifact root"


TOKEN = "correct-horse-battery-staple"


@dataclass
class Seeded:
    uri: str
    experiment_id: str
    table_runs: list[str]
    long_run: str
    plain_run: str
    artifact_uri: str
    outside_file: Path
    long_steps: int


def seed(uri: str, folder: Path, long_steps: int = 100_000) -> Seeded:
    answer = folder / "seeded.json"
    env = {**os.environ, "MLTRACK_DATA_DIR": str(folder / ".mltrack"), "MLTRACK_TRACKING_URI": uri}
    result = subprocess.run(
        [sys.executable, str(HERE / "seed_store.py"), uri, str(answer), str(long_steps)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    made = json.loads(answer.read_text())
    outside = folder / "outside-secret.txt"
    outside.write_text(SECRET_TEXT)
    return Seeded(
        uri=uri,
        experiment_id=made["experiment_id"],
        table_runs=made["table_runs"],
        long_run=made["long_run"],
        plain_run=made["plain_run"],
        artifact_uri=made["artifact_uri"],
        outside_file=outside,
        long_steps=made["long_steps"],
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON (a browser's JSON.parse rejects it)")


def strict_json(raw: bytes | str) -> Any:
    """``raw`` parsed as strict JSON: the bare NaN/Infinity that Python writes are refused."""
    return json.loads(raw, parse_constant=_not_json)


@dataclass
class SmallStore:
    """An experiment with one run (param lr, metric loss) and a registered model with one version."""

    uri: str
    experiment_id: str
    run_id: str
    model: str


def seed_small(uri: str) -> SmallStore:
    """Fill ``uri`` through MlflowClient (quick: no long metric, no artifacts). Names are unique:
    the session's mlflow server is shared with other tests."""
    from uuid import uuid4

    from mlflow import MlflowClient

    suffix = uuid4().hex[:8]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(f"ui-inputs-{suffix}")
    run = client.create_run(experiment_id, run_name="only")
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_metric(run.info.run_id, "loss", 0.5, step=0)
    client.set_terminated(run.info.run_id)
    model = f"ui-inputs-{suffix}"
    client.create_registered_model(model)
    client.create_model_version(model, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return SmallStore(uri, experiment_id, run.info.run_id, model)


class UI:
    """A running UI app and a tiny HTTP client for it (urllib: no test-only dependency)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(
        self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, _headers, raw = self.request(path, **kwargs)
        return status, strict_json(raw) if raw else None

    def ok(self, path: str, **kwargs: Any) -> Any:
        status, body = self.get(path, **kwargs)
        assert status == 200, (path, status, body)
        return body


def serve(**app_args: Any) -> Any:
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    return BackgroundServer(create_app(**app_args))


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
