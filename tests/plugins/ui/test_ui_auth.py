"""Who may use the UI: loopback only without a token; a token on every API route otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mltrack.errors import ConfigError

from .ui_helpers import TOKEN, UI, Seeded

PROTECTED = ["/api/summary", "/api/runs", "/api/experiments", "/api/models", "/api/deployments", "/-/plugins.json"]


@pytest.mark.parametrize("path", PROTECTED)
def test_every_api_route_needs_the_token(ui_with_token: UI, path: str) -> None:
    status, body = ui_with_token.get(path)
    assert status == 401 and body["error"] == "authentication required"


def test_run_data_and_artifacts_need_the_token(ui_with_token: UI, seeded: Seeded) -> None:
    for path in (
        f"/api/runs/{seeded.plain_run}",
        f"/api/runs/{seeded.plain_run}/artifacts",
        f"/api/runs/{seeded.plain_run}/artifacts/file?path=config.json",
        f"/api/metrics/history?run_ids={seeded.long_run}&keys=loss",
    ):
        assert ui_with_token.get(path)[0] == 401, path


@pytest.mark.parametrize("path", PROTECTED)
def test_the_bearer_token_opens_every_route(ui_with_token: UI, path: str) -> None:
    status, _ = ui_with_token.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200


def test_a_wrong_token_is_refused(ui_with_token: UI) -> None:
    assert ui_with_token.get("/api/runs", headers={"Authorization": "Bearer wrong-token-123"})[0] == 401
    assert ui_with_token.get("/api/auth/login", method="POST", body={"token": "wrong-token-123"})[0] == 401


def test_login_sets_a_session_cookie_that_is_not_the_token(ui_with_token: UI) -> None:
    status, headers, _ = ui_with_token.request("/api/auth/login", method="POST", body={"token": TOKEN})
    assert status == 204
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    assert ui_with_token.get("/api/runs", headers={"Cookie": session})[0] == 200
    assert ui_with_token.get("/api/runs", headers={"Cookie": "mltrack_ui_session=forged"})[0] == 401


def test_pages_load_without_the_token_but_hold_no_data(ui_with_token: UI) -> None:
    status, _headers, body = ui_with_token.request("/")
    assert status == 200 and b"<html" in body.lower()
    assert ui_with_token.get("/api/auth")[1] == {
        "required": True,
        "authenticated": False,
        "user": None,
        "token_login": True,
    }


def test_no_response_carries_the_token(ui_with_token: UI, seeded: Seeded) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in [*PROTECTED, "/api/auth", f"/api/runs/{seeded.plain_run}", "/"]:
        _status, headers, body = ui_with_token.request(path, headers=auth)
        assert TOKEN.encode() not in body, path
        assert all(TOKEN not in value for value in headers.values()), path


def test_without_a_token_only_localhost_host_headers_are_answered(ui: UI) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
    assert ui.get("/api/runs", headers={"Host": "evil.example:5050"})[0] == 403
    assert ui.get("/api/runs", headers={"Host": "localhost:5050"})[0] == 200


def test_a_non_loopback_address_without_a_token_is_refused() -> None:
    from mltrack_ui.app import create_app

    with pytest.raises(ConfigError, match="without authentication"):
        create_app(host="0.0.0.0")
    with pytest.raises(ConfigError):
        create_app(host="192.0.2.10")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_need_no_token(host: str) -> None:
    from mltrack_ui.auth import is_loopback

    assert is_loopback(host)


def mltrack_ui(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "mltrack"), "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )


def test_mltrack_ui_on_all_interfaces_without_a_token_exits_with_the_fix(seeded: Seeded) -> None:
    process = mltrack_ui("--host", "0.0.0.0", "--port", "0", env={"MLTRACK_TRACKING_URI": seeded.uri})
    output, _ = process.communicate(timeout=120)

    assert process.returncode != 0
    assert "without authentication" in output and "MLTRACK_PLUGINS__UI__AUTH_TOKEN" in output


def test_a_short_token_is_refused_by_the_settings(seeded: Seeded) -> None:
    process = mltrack_ui(
        "--host", "0.0.0.0", env={"MLTRACK_TRACKING_URI": seeded.uri, "MLTRACK_PLUGINS__UI__AUTH_TOKEN": "short"}
    )
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0 and "auth_token" in output and "at least 16" in output


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (" " * 8, "blank"),
        ("\t" * 20, "blank"),
        (" " * 40, "blank"),
        ("  a-long-enough-token-but-padded  ", "whitespace"),
        ("fifteen-chars-x", "at least 16"),
    ],
)
def test_blank_padded_or_short_tokens_are_refused_at_start(
    token: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrack.extend import plugin_settings
    from mltrack_ui.app import create_app

    monkeypatch.setenv("MLTRACK_PLUGINS__UI__AUTH_TOKEN", token)
    with pytest.raises(ConfigError, match=problem) as refused:
        plugin_settings("ui")
    assert "auth_token" in str(refused.value) and "token_urlsafe" in str(refused.value)
    with pytest.raises(ConfigError, match=problem):
        create_app(host="0.0.0.0", auth_token=token)  # the app refuses it too, however it was given


# -- logout: only from the UI's own pages ------------------------------------------------------------


def logged_in(ui: UI) -> str:
    _status, headers, _ = ui.request("/api/auth/login", method="POST", body={"token": TOKEN})
    return headers["set-cookie"].split(";", 1)[0]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no browser signal at all
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_logout_from_another_site_is_refused(ui_with_token: UI, headers: dict[str, str]) -> None:
    session = logged_in(ui_with_token)
    status, response_headers, raw = ui_with_token.request(
        "/api/auth/logout", method="POST", headers={"Cookie": session, **headers}
    )
    assert status == 403 and "set-cookie" not in {k.lower() for k in response_headers}
    body = json.loads(raw)
    assert body["error"] and body["hint"]
    assert ui_with_token.get("/api/runs", headers={"Cookie": session})[0] == 200  # still signed in


@pytest.mark.parametrize("same_origin", ["sec-fetch-site", "origin"])
def test_logout_from_the_uis_own_page_clears_the_cookie(ui_with_token: UI, same_origin: str) -> None:
    session = logged_in(ui_with_token)
    own = (
        {"Sec-Fetch-Site": "same-origin"}
        if same_origin == "sec-fetch-site"
        else {"Origin": ui_with_token.url}  # an older browser: Origin only
    )
    status, headers, _ = ui_with_token.request("/api/auth/logout", method="POST", headers={"Cookie": session, **own})
    assert status == 204
    assert headers["set-cookie"].startswith("mltrack_ui_session=") and "Max-Age=0" in headers["set-cookie"]


def test_logout_is_post_only(ui_with_token: UI) -> None:
    assert ui_with_token.get("/api/auth/logout", headers={"Sec-Fetch-Site": "same-origin"})[0] in {404, 405}


# -- the Host header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost:5050@evil.com",
        "localhost:evil",
        "[::1].evil.com",
        "[::1]evil.com",
        "localhost:5050:5050",
        "localhost:99999",
        "localhost:",
        "localhost.evil.com",
        "127.0.0.1.nip.io",
        "[::1",
        "[evil.com]:80",
        "",
    ],
)
def test_host_headers_that_only_look_like_localhost_are_refused(ui: UI, host: str) -> None:
    status, body = ui.get("/api/runs", headers={"Host": host})
    assert status in {400, 403}, (host, status)
    assert body["error"] and body["hint"]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:5050", "127.0.0.1:5050", "127.0.0.2", "[::1]:5050", "[::1]"])
def test_loopback_host_headers_with_or_without_a_port_are_answered(ui: UI, host: str) -> None:
    assert ui.get("/api/auth", headers={"Host": host})[0] == 200


def test_a_malformed_host_is_refused_even_with_a_token(ui_with_token: UI) -> None:
    headers = {"Host": "localhost:5050@evil.com", "Authorization": f"Bearer {TOKEN}"}
    assert ui_with_token.get("/api/runs", headers=headers)[0] == 400


def test_mltrack_ui_on_all_interfaces_with_a_token_enforces_it(seeded: Seeded) -> None:
    from mltrack.testing.servers import free_port, wait_for_http

    port = free_port()
    process = mltrack_ui(
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        env={"MLTRACK_TRACKING_URI": seeded.uri, "MLTRACK_PLUGINS__UI__AUTH_TOKEN": TOKEN},
    )
    try:
        # Only loopback traffic: the server listens on every interface, the test talks to 127.0.0.1.
        ui = UI(f"http://127.0.0.1:{port}")
        wait_for_http(f"{ui.url}/", timeout=60)
        assert ui.get("/api/runs")[0] == 401
        assert ui.get("/-/plugins.json")[0] == 401
        assert ui.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the whole group goes
        process.communicate(timeout=30)


def test_a_busy_port_is_one_line_with_a_hint_before_anything_is_announced(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [str(Path(sys.executable).parent / "mltrack"), "ui", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "MLTRACK_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"},
            timeout=60,
        )
    assert result.returncode == 1
    assert "MLTrack UI on" not in result.stdout
    assert "the port is already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr
