"""The UI app served by uvicorn on a background thread (tests, benchmarks, notebooks)."""

from __future__ import annotations

import threading
import time
from typing import Any

from mltrack import MLTrackError

START_TIMEOUT_S = 30.0


class BackgroundServer:
    """``with BackgroundServer(app) as server: server.url`` -- a real HTTP server on 127.0.0.1."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, name="mltrack-ui-server", daemon=True)
        self.host = host

    @property
    def port(self) -> int:
        sockets = self._server.servers[0].sockets if self._server.servers else []
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise MLTrackError(f"the UI server did not start on {self.host} within {START_TIMEOUT_S:.0f}s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
