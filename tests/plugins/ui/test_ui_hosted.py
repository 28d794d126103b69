"""A hosted front end (the Vercel option): the static export served from one origin, the UI's API
from another. The API's CORS allow-list (``cors_origins``, off by default) names the front end's
origin; the front end finds the API in the ``config.json`` beside it; login by token works across
the two origins. Real parts: the built front end under Python's http.server, the API under
uvicorn, headless Chromium."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from .ui_helpers import TOKEN, UI, SmallStore, screenshot, serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hosted:
    front: str  # the static front end's origin
    api: UI  # the UI's API on another port


@pytest.fixture(scope="module")
def hosted(
    sqlite_store: SmallStore, frontend_built: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hosted]:
    from mltrack_ui.app import static_dir

    built = static_dir()
    assert built is not None
    front_port = _free_port()
    front = f"http://127.0.0.1:{front_port}"
    with serve(tracking_uri=sqlite_store.uri, host="0.0.0.0", auth_token=TOKEN, cors_origins=[front]) as server:
        site = tmp_path_factory.mktemp("hosted") / "site"
        shutil.copytree(built, site)
        (site / "config.json").write_text(json.dumps({"apiBaseUrl": server.url}))
        http = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(front_port), "--bind", "127.0.0.1", "--directory", str(site)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"{front}/config.json", timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or http.poll() is not None:
                        raise
                    time.sleep(0.1)
            yield Hosted(front, UI(server.url))
        finally:
            http.terminate()
            http.wait(10)


def _preflight(api: UI, origin: str) -> dict[str, str]:
    status, headers, _ = api.request(
        "/api/runs",
        method="OPTIONS",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    return {"status": str(status), **{key.lower(): value for key, value in headers.items()}}


def test_an_allowed_origin_may_call_the_api_with_credentials(hosted: Hosted) -> None:
    answer = _preflight(hosted.api, hosted.front)
    assert answer["status"] == "200"
    assert answer["access-control-allow-origin"] == hosted.front
    assert answer["access-control-allow-credentials"] == "true"


def test_an_origin_not_on_the_list_gets_no_cors_grant(hosted: Hosted) -> None:
    answer = _preflight(hosted.api, "http://evil.example")
    assert "access-control-allow-origin" not in answer
    _status, headers, _ = hosted.api.request("/api/auth", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in {key.lower() for key in headers}


def test_cors_is_off_by_default(sqlite_store: SmallStore) -> None:
    with serve(tracking_uri=sqlite_store.uri) as server:
        answer = _preflight(UI(server.url), "http://127.0.0.1:1")
    assert "access-control-allow-origin" not in answer


@pytest.mark.parametrize("entry", ["*", "https://ui.example.com/app", "ui.example.com"])
def test_cors_origins_takes_origins_only(entry: str) -> None:
    from mltrack_ui.settings import UISettings

    with pytest.raises(ValidationError) as caught:
        UISettings(cors_origins=[entry])
    message = str(caught.value)
    assert "cors_origins" in message and "scheme://host[:port]" in message


def test_cors_origins_reads_a_comma_separated_environment_value() -> None:
    from mltrack_ui.settings import UISettings

    settings = UISettings.model_validate({"cors_origins": "https://UI.example.com/, http://127.0.0.1:3000"})
    assert settings.cors_origins == ["https://ui.example.com", "http://127.0.0.1:3000"]


def test_the_hosted_front_end_logs_in_by_token_and_shows_runs(
    page: Any, hosted: Hosted, sqlite_store: SmallStore
) -> None:
    api_calls: list[str] = []
    page.on("request", lambda request: api_calls.append(request.url) if "/api/" in request.url else None)
    page.goto(f"{hosted.front}/runs/?experiment={sqlite_store.experiment_id}")
    page.wait_for_selector("[data-testid=login-form]")
    page.fill("input[type=password]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=run-row]", timeout=30_000)
    screenshot(page, "hosted-runs")
    api = hosted.api.url
    assert f"{api}/api/auth/login" in api_calls, api_calls
    assert any(url.startswith(f"{api}/api/runs?") for url in api_calls), api_calls
    # Only the runs page's inline early fetch (lib/earlyFetch.ts, same-origin by design) goes to the
    # static host; it gets a 404 there and the page asks the API instead.
    assert {url.split("?")[0] for url in api_calls if not url.startswith(api)} <= {f"{hosted.front}/api/runs"}


def test_the_hosted_front_ends_artifact_links_point_at_the_api(
    page: Any, hosted: Hosted, sqlite_store: SmallStore
) -> None:
    from mlflow import MlflowClient

    MlflowClient(sqlite_store.uri).log_text(sqlite_store.run_id, "hello from the run", "notes/hello.txt")
    page.goto(f"{hosted.front}/run/?id={sqlite_store.run_id}")
    page.wait_for_selector("[data-testid=login-form]")  # each test's browser context starts logged out
    page.fill("input[type=password]", TOKEN)
    page.click("button[type=submit]")
    page.get_by_role("button", name="artifacts").click()
    page.get_by_role("button", name="notes").click()
    page.click("[data-testid=artifact-file]")
    assert page.wait_for_selector("[data-testid=artifact-preview]").inner_text() == "hello from the run"
    href = page.get_by_role("link", name="download").get_attribute("href")
    assert href is not None and href.startswith(f"{hosted.api.url}/api/runs/"), href
    screenshot(page, "hosted-artifact")
