"""Fixtures for the UI tests: a seeded store (sqlite, and a real ``mlflow server``), the UI app
served by uvicorn on 127.0.0.1, and headless Chromium through pytest-playwright."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "ui"
SECRET_TEXT = "this file is outside every artifact root"


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


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A sqlite store seeded once per session (tests only read it)."""
    folder = tmp_path_factory.mktemp("ui-store")
    made = seed(f"sqlite:///{folder / 'mlflow.db'}", folder)
    # A symlink planted inside the artifact folder that points outside it.
    (Path(made.artifact_uri) / "escape.txt").symlink_to(made.outside_file)
    return made


@pytest.fixture(scope="session")
def seeded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A real ``mlflow server`` (sqlite backend, proxied artifacts) seeded once per session."""
    from mltrack.testing.servers import MlflowServer

    folder = tmp_path_factory.mktemp("ui-server")
    server = MlflowServer(f"sqlite:///{folder / 'server.db'}", folder / "artifacts")
    server.start()
    try:
        # Every point goes through REST twice (seeding, reading): 20k steps keep it quick.
        yield seed(server.url, folder, long_steps=20_000)
    finally:
        server.stop()


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
        return status, json.loads(raw) if raw else None

    def ok(self, path: str, **kwargs: Any) -> Any:
        status, body = self.get(path, **kwargs)
        assert status == 200, (path, status, body)
        return body


def serve(**app_args: Any) -> Any:
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    return BackgroundServer(create_app(**app_args))


@pytest.fixture(scope="session")
def ui(seeded: Seeded) -> Iterator[UI]:
    with serve(tracking_uri=seeded.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def ui_remote(seeded_server: Seeded) -> Iterator[UI]:
    with serve(tracking_uri=seeded_server.uri) as server:
        yield UI(server.url)


TOKEN = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def ui_with_token(seeded: Seeded) -> Iterator[UI]:
    """The app as ``mltrack ui --host 0.0.0.0`` builds it (token required), listening on loopback."""
    with serve(tracking_uri=seeded.uri, host="0.0.0.0", auth_token=TOKEN) as server:
        yield UI(server.url)


# -- the browser ----------------------------------------------------------------------------------

if find_spec("pytest_playwright") is None:

    @pytest.fixture
    def page() -> Any:
        pytest.skip("pytest-playwright is not installed (make install adds it)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make install does)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    }


@pytest.fixture(scope="session")
def frontend_built() -> None:
    from mltrack_ui.app import static_dir

    if static_dir() is None:
        pytest.fail("the front end is not built: run `make ui-build` (make install does it)")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
