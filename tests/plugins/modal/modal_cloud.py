"""Test helpers of the Modal plugin: the one faked seam (``modal.runner.deploy_app``) and token switches.

``FakeModalCloud.deploy_app`` stands in for Modal's deploy and nothing else. What the real
``deploy_app`` does that a client can observe: it creates the app's objects on Modal, hydrating
each function with its handle metadata (the web URL among it), publishes the app and returns a
``DeployResult``; Modal then serves the web function's ASGI app at that URL, and a redeploy under
the same name keeps the URL. The fake does the same on this machine: it builds the endpoint's ASGI
app with Modal's own ``.local()`` on the real ``modal.App`` the provider built, serves it with
uvicorn on 127.0.0.1 (one port per app name, kept across redeploys), hydrates the function with
that URL and returns a real ``modal.runner.DeployResult``. The App, its image and options, the
serving app and every HTTP request to the endpoint are real.

Modal's app lookup and stop (``list``, ``delete``, recent logs) have no stand-in: they need a token
and Modal's API, so their tests cover the no-token path for real and the live test covers the rest.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

FAKE_WORKSPACE = "mltrack-tests"
_ids = itertools.count(1)


@dataclass
class FakeDeployedApp:
    name: str
    environment: str | None
    tag: str
    app: Any
    app_id: str
    port: int
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class FakeModalCloud:
    """Modal's side of ``deploy_app``, on 127.0.0.1."""

    apps: dict[str, FakeDeployedApp] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def deploy_app(
        self,
        app: Any,
        name: str | None = None,
        *,
        environment_name: str | None = None,
        tag: str = "",
        client: Any = None,
        **kwargs: Any,
    ) -> Any:
        import modal.runner
        from modal._utils.async_utils import synchronizer

        name = name or app.name
        self.calls.append({"app": app, "name": name, "environment": environment_name, "tag": tag, **kwargs})
        local_state = synchronizer._translate_in(app)._local_state
        (web_name,) = local_state.web_endpoints  # MLTrack's apps have exactly one endpoint
        function = local_state.functions[web_name]
        previous = self.apps.get(name)
        port = previous.port if previous is not None else _free_port()
        if previous is not None:
            _stop(previous)
        deployed = FakeDeployedApp(name, environment_name, tag, app, f"ap-fake{next(_ids):06d}", port)
        asgi = function.local()  # what the container runs: the real endpoint function of the real App
        deployed.server, deployed.thread = _serve(asgi, port)
        _hydrate(function, deployed.url, web_name)
        self.apps[name] = deployed
        environment = environment_name or "main"
        page = f"https://modal.com/apps/{FAKE_WORKSPACE}/{environment}/deployed/{name}"
        return modal.runner.DeployResult(
            app_id=deployed.app_id, app_page_url=page, app_logs_url=f"{page}?activeTab=logs", warnings=[]
        )

    def stop(self, name: str) -> None:
        """What stopping the app on Modal does to its endpoint: it stops answering."""
        _stop(self.apps.pop(name))

    def close(self) -> None:
        for deployed in self.apps.values():
            _stop(deployed)
        self.apps.clear()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(asgi: Any, port: int) -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"fake-modal-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the fake Modal endpoint on port {port} did not start")
        time.sleep(0.01)
    return server, thread


def _stop(deployed: FakeDeployedApp) -> None:
    if deployed.server is not None:
        deployed.server.should_exit = True
    if deployed.thread is not None:
        deployed.thread.join(timeout=30)


def _hydrate(function: Any, url: str, name: str) -> None:
    """Give the function the handle metadata Modal's servers give it on deploy (its web URL)."""
    from modal.client import _Client
    from modal_proto import api_pb2

    client = _Client("https://api.modal.invalid", api_pb2.CLIENT_TYPE_CLIENT, None)
    function._hydrate(
        f"fu-fake{next(_ids):06d}", client, api_pb2.FunctionHandleMetadata(web_url=url, function_name=name)
    )


@contextmanager
def modal_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModalCloud]:
    """The fake in place of ``modal.runner.deploy_app``, with a (made-up) token so the deploy may start."""
    import modal.runner

    cloud = FakeModalCloud()
    monkeypatch.setattr(modal.runner, "deploy_app", cloud.deploy_app)
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-mltrack-test-token")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-mltrack-test-secret")
    try:
        yield cloud
    finally:
        cloud.close()


def remove_modal_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Modal token anywhere: not in the environment, not in a profile of the machine's ~/.modal.toml."""
    import modal.config

    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_OAUTH_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(modal.config, "_user_config", {})
