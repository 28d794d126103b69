"""The UI on a team server: replicas behind one address share sessions, and an authenticating
reverse proxy names the user.

Real ``mltrack ui`` processes on one sqlite store, behind a small round-robin TCP proxy of the
test's own (each connection goes to the next replica; urllib opens one connection a request, so
consecutive requests alternate). The trusted-proxy tests connect from 127.0.0.2 -- the address the
UI trusts -- through the same kind of proxy, and from 127.0.0.1 directly as an untrusted peer.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mltrack.errors import ConfigError
from mltrack.testing.servers import free_port, wait_for_http

from .ui_helpers import TOKEN, UI, SmallStore, screenshot

SECRET_A = "a-session-secret-shared-by-replicas-0001"
SECRET_B = "another-session-secret-for-other-replicas"
PROXY_ADDRESS = "127.0.0.2"
USER_HEADER = "X-Forwarded-User"
USER = "alice@example.com"


class RoundRobinProxy:
    """TCP forwarding from 127.0.0.1 to the next backend port, connection by connection.

    ``source`` is the address the proxy connects from (what the backends see as its peer).
    """

    def __init__(self, backends: list[int], source: str | None = None) -> None:
        self.backends = backends
        self.source = source
        self.served: list[int] = []  # the backend port of each accepted connection, in order
        self._turn = itertools.count()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="round-robin-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            port = self.backends[next(self._turn) % len(self.backends)]
            self.served.append(port)
            try:
                upstream = socket.create_connection(
                    ("127.0.0.1", port), timeout=30, source_address=(self.source, 0) if self.source else None
                )
            except OSError:
                client.close()
                continue
            # both sockets close once both directions have ended
            done = threading.Barrier(2, action=functools.partial(self._close_both, client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target, done), daemon=True).start()

    @staticmethod
    def _close_both(first: socket.socket, second: socket.socket) -> None:
        first.close()
        second.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, done: threading.Barrier) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait(timeout=60)

    def close(self) -> None:
        self._listener.close()


@dataclass
class Replica:
    """One ``mltrack ui`` process on a fixed port (so a restart comes back at the same address)."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def ui(self) -> UI:
        return UI(f"http://127.0.0.1:{self.port}")

    def start(self) -> Replica:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "mltrack"), "ui", "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        try:
            wait_for_http(f"{self.ui.url}/api/auth", timeout=90, process=self.process)
        except Exception:
            self.stop()
            raise AssertionError(f"mltrack ui did not start:\n{self.log.read_text()[-3000:]}") from None
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self.process = None


def replica(store: SmallStore, folder: Path, name: str, **settings: str) -> Replica:
    env = {"MLTRACK_TRACKING_URI": store.uri, "MLTRACK_PLUGINS__UI__AUTH_TOKEN": TOKEN}
    env.update({f"MLTRACK_PLUGINS__UI__{key.upper()}": value for key, value in settings.items()})
    return Replica(env, folder / f"{name}.log")


@pytest.fixture(scope="module")
def replicas(sqlite_store: SmallStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    """Two replicas with the same token and no session secret (the key is derived from the token)."""
    folder = tmp_path_factory.mktemp("replicas")
    started = [replica(sqlite_store, folder, name).start() for name in ("a", "b")]
    try:
        yield started
    finally:
        for one in started:
            one.stop()


@pytest.fixture(scope="module")
def secret_replicas(sqlite_store: SmallStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    """Two replicas sharing one configured session secret."""
    folder = tmp_path_factory.mktemp("secret-replicas")
    started = [replica(sqlite_store, folder, name, session_secret=SECRET_A).start() for name in ("c", "d")]
    try:
        yield started
    finally:
        for one in started:
            one.stop()


def login(ui: UI) -> str:
    """Log in with the token; the ``Cookie`` header value of the session it set."""
    status, headers, body = ui.request("/api/auth/login", method="POST", body={"token": TOKEN})
    assert status == 204, body
    return headers["set-cookie"].split(";", 1)[0]


def status_with(ui: UI, cookie: str, path: str = "/api/runs") -> int:
    return ui.get(path, headers={"Cookie": cookie})[0]


# -- replicas and the session secret ----------------------------------------------------------------


def test_a_login_on_one_replica_is_accepted_by_the_next(replicas: list[Replica]) -> None:
    proxy = RoundRobinProxy([r.port for r in replicas])
    try:
        front = UI(proxy.url)
        cookie = login(front)
        answers = [status_with(front, cookie) for _ in range(4)]
    finally:
        proxy.close()
    # the login and the four reads alternated between the two replicas
    assert proxy.served == [replicas[i % 2].port for i in range(5)]
    assert answers == [200, 200, 200, 200]


def test_a_restarted_replica_still_accepts_an_earlier_login(replicas: list[Replica]) -> None:
    cookie = login(replicas[0].ui)
    replicas[0].stop()
    replicas[0].start()
    assert status_with(replicas[0].ui, cookie) == 200
    assert status_with(replicas[1].ui, cookie) == 200


def test_replicas_sharing_a_session_secret_accept_each_others_logins(secret_replicas: list[Replica]) -> None:
    first, second = secret_replicas
    assert status_with(second.ui, login(first.ui)) == 200
    assert status_with(first.ui, login(second.ui)) == 200


def test_a_replica_with_another_key_refuses_the_cookie(replicas: list[Replica], secret_replicas: list[Replica]) -> None:
    # same token, but one set keys its sessions with SECRET_A and the other derives its key from the token
    assert status_with(replicas[0].ui, login(secret_replicas[0].ui)) == 401
    assert status_with(secret_replicas[0].ui, login(replicas[0].ui)) == 401


def test_the_login_cookie_carries_the_configured_max_age(secret_replicas: list[Replica]) -> None:
    _status, headers, _body = secret_replicas[0].ui.request("/api/auth/login", method="POST", body={"token": TOKEN})
    assert f"Max-Age={7 * 24 * 3600}" in headers["set-cookie"]


def policy(token: str = TOKEN, **options: Any) -> Any:
    from mltrack_ui.auth import AuthPolicy

    return AuthPolicy("0.0.0.0", token, **options)


def test_a_cookie_expires_after_the_session_max_age() -> None:
    sessions = policy(session_max_age_s=3600)
    now = int(time.time())
    assert sessions.session_valid(sessions.session_value(now - 3590))
    assert not sessions.session_valid(sessions.session_value(now - 3610))


def test_a_cookie_issued_in_the_future_is_refused_beyond_clock_skew() -> None:
    sessions = policy()
    now = int(time.time())
    assert sessions.session_valid(sessions.session_value(now + 60))  # another replica's clock a minute ahead
    assert not sessions.session_valid(sessions.session_value(now + 3600))


def test_changing_the_token_or_the_secret_ends_every_session() -> None:
    cookie = policy(session_secret=SECRET_A).session_value()
    assert policy(session_secret=SECRET_A).session_valid(cookie)
    assert not policy(session_secret=SECRET_B).session_valid(cookie)
    assert not policy("a-new-token-after-rotation", session_secret=SECRET_A).session_valid(cookie)


@pytest.mark.parametrize(
    "forged",
    ["", "v1", "v1..", "v1.abc.def", "v2.{now}.{mac}", "v1.{now}.{mac}x", "v1.{later}.{mac}", "v1.0{now}.{mac}"],
)
def test_a_tampered_cookie_is_refused(forged: str) -> None:
    sessions = policy()
    now = int(time.time())
    mac = sessions.session_value(now).rsplit(".", 1)[1]
    assert not sessions.session_valid(forged.format(now=now, later=now + 1, mac=mac))


def test_a_short_session_secret_stops_mltrack_ui_naming_the_field_not_the_value(sqlite_store: SmallStore) -> None:
    short = "only-twenty-chars-00"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mltrack"), "ui", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "MLTRACK_TRACKING_URI": sqlite_store.uri, "MLTRACK_PLUGINS__UI__SESSION_SECRET": short},
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "session_secret" in output and "at least 32 characters" in output and "token_urlsafe" in output
    assert short not in output and "Traceback" not in output


# -- behind an authenticating reverse proxy ---------------------------------------------------------


@pytest.fixture(scope="module")
def behind_proxy(sqlite_store: SmallStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UI, UI]]:
    """(through the trusted proxy at 127.0.0.2, directly from 127.0.0.1) to one replica that
    believes X-Forwarded-User only from 127.0.0.2 and keeps its token for scripts."""
    folder = tmp_path_factory.mktemp("behind-proxy")
    one = replica(
        sqlite_store,
        folder,
        "proxied",
        trusted_proxy_user_header=USER_HEADER,
        trusted_proxies=f"{PROXY_ADDRESS}/32,10.20.0.0/16",
    ).start()
    proxy = RoundRobinProxy([one.port], source=PROXY_ADDRESS)
    try:
        yield UI(proxy.url), one.ui
    finally:
        proxy.close()
        one.stop()


def test_the_user_header_from_the_trusted_proxy_signs_the_user_in(behind_proxy: tuple[UI, UI]) -> None:
    trusted, _direct = behind_proxy
    named = {USER_HEADER: USER}
    assert trusted.ok("/api/auth", headers=named) == {
        "required": True,
        "authenticated": True,
        "user": USER,
        "token_login": True,
    }
    assert trusted.get("/api/runs", headers=named)[0] == 200


def test_a_user_name_in_utf8_is_shown_as_sent(behind_proxy: tuple[UI, UI]) -> None:
    trusted, _direct = behind_proxy
    name = "José Núñez"
    # what a proxy passing an identity provider's display name sends: the name's UTF-8 bytes
    headers: Any = {USER_HEADER: name.encode()}
    assert trusted.ok("/api/auth", headers=headers)["user"] == name


def test_the_user_header_from_any_other_peer_is_ignored(behind_proxy: tuple[UI, UI]) -> None:
    _trusted, direct = behind_proxy
    named = {USER_HEADER: USER}
    assert direct.ok("/api/auth", headers=named)["user"] is None
    assert direct.get("/api/runs", headers=named)[0] == 401
    # nor does claiming to have come through the proxy help (the UI reads the connection's own peer)
    spoofed = {**named, "X-Forwarded-For": PROXY_ADDRESS, "X-Real-IP": PROXY_ADDRESS, "Forwarded": "for=127.0.0.2"}
    assert direct.get("/api/runs", headers=spoofed)[0] == 401


@pytest.mark.parametrize("value", ["", "   ", "x" * 300, "alice\tadmin"])
def test_an_unusable_user_value_names_nobody(behind_proxy: tuple[UI, UI], value: str) -> None:
    trusted, _direct = behind_proxy
    assert trusted.get("/api/runs", headers={USER_HEADER: value})[0] == 401


def test_the_token_still_opens_the_api_beside_the_proxy(behind_proxy: tuple[UI, UI]) -> None:
    trusted, direct = behind_proxy
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert direct.get("/api/runs", headers=bearer)[0] == 200
    assert trusted.get("/api/runs", headers=bearer)[0] == 200
    assert direct.ok("/api/auth", headers=bearer)["user"] is None  # a token names no one
    assert trusted.get("/api/runs")[0] == 401  # the proxy's address alone, without the header, is no one


def test_a_proxy_only_ui_may_bind_every_interface_and_has_no_token_login(sqlite_store: SmallStore) -> None:
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    app = create_app(
        tracking_uri=sqlite_store.uri,
        host="0.0.0.0",
        trusted_proxy_user_header=USER_HEADER,
        trusted_proxies=[PROXY_ADDRESS],
    )
    with BackgroundServer(app) as server:
        ui = UI(server.url)
        assert ui.ok("/api/auth") == {"required": True, "authenticated": False, "user": None, "token_login": False}
        status, body = ui.get("/api/auth/login", method="POST", body={"token": TOKEN})
        assert status == 400 and "authenticating proxy" in body["hint"]
        assert ui.get("/api/runs")[0] == 401


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"trusted_proxy_user_header": USER_HEADER}, "trusted_proxies is empty"),
        ({"trusted_proxy_user_header": USER_HEADER, "trusted_proxies": "proxy.internal"}, "not an IP address"),
        ({"trusted_proxy_user_header": "X Forwarded User", "trusted_proxies": "10.0.0.1"}, "HTTP header name"),
        ({"trusted_proxy_user_header": "Authorization", "trusted_proxies": "10.0.0.1"}, "only your proxy sets"),
    ],
)
def test_proxy_settings_that_would_trust_the_wrong_peer_are_refused(settings: dict[str, str], complaint: str) -> None:
    from mltrack_ui.settings import UISettings

    with pytest.raises(ValidationError, match=complaint):
        UISettings.model_validate(settings)


def test_trusted_proxies_take_a_comma_separated_list_and_ipv4_mapped_peers() -> None:
    from mltrack_ui.auth import ProxyIdentity
    from mltrack_ui.settings import UISettings

    settings = UISettings.model_validate(
        {"trusted_proxy_user_header": USER_HEADER, "trusted_proxies": "10.0.0.5, 10.1.0.0/16,fd00::/8"}
    )
    assert settings.trusted_proxies == ["10.0.0.5", "10.1.0.0/16", "fd00::/8"]
    proxy = ProxyIdentity(USER_HEADER, settings.trusted_proxies)
    assert proxy.trusts("10.1.2.3") and proxy.trusts("::ffff:10.0.0.5") and proxy.trusts("fd00::1")
    assert not proxy.trusts("10.0.0.6") and not proxy.trusts(None) and not proxy.trusts("testclient")
    with pytest.raises(ConfigError, match="trusted_proxies"):
        ProxyIdentity(USER_HEADER, [])


@pytest.mark.usefixtures("frontend_built")
def test_the_nav_shows_who_the_proxy_signed_in(
    page: Any, behind_proxy: tuple[UI, UI], sqlite_store: SmallStore
) -> None:
    trusted, _direct = behind_proxy
    page.set_extra_http_headers({USER_HEADER: USER})  # what the authenticating proxy adds
    page.set_viewport_size({"width": 1280, "height": 600})
    page.goto(f"{trusted.url}/runs/?experiment={sqlite_store.experiment_id}")
    page.wait_for_selector("[data-testid=run-row]", timeout=30_000)
    assert page.inner_text("[data-testid=current-user]") == USER
    assert page.locator("[data-testid=login-form]").count() == 0
    screenshot(page, "proxy-user")
