"""``serve``: the serving app on uvicorn, in the foreground, until SIGTERM or SIGINT.

One worker loads the model in this process before it binds the port, so a model that
cannot be found or loaded fails fast with MLTrack's message. Several workers share one
socket bound here; each loads the model (located once here) before it accepts, so no
worker answers before its model is ready. A signal stops accepting, lets in-flight
requests finish for at most the shutdown timeout (then cuts them off: a slow client or a
stuck prediction must not hold the process past its supervisor's patience), and returns
(exit status 0).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from mltrack.errors import InvalidInputError, MLTrackError
from mltrack.serving.limits import ServingLimits, serving_limits
from mltrack.serving.loading import ModelLocation, load_located, locate_model

if TYPE_CHECKING:
    import socket

# uvicorn and the app (fastapi) are imported when a server starts, not when `mltrack serve --help` runs
# (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.serving")

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
#: how a multi-worker server tells its workers what to load (JSON)
WORKER_SPEC_ENV = "MLTRACK_SERVE_WORKER_SPEC"
#: "1" turns on the one-line access log (the local provider sets it for the servers it starts).
#: Not under MLTRACK_SERVE_: the serving limits refuse unknown MLTRACK_SERVE_* keys in .env.
ACCESS_LOG_ENV = "MLTRACK_ACCESS_LOG"


def access_log_enabled() -> bool:
    """Whether ``ACCESS_LOG_ENV`` asks for the access log."""
    return os.environ.get(ACCESS_LOG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class AccessLog:
    """ASGI middleware: one line per HTTP request on stdout, written when its response ends.

    ``2026-01-31 12:00:00 POST /invocations 200 3.1ms``. One ``os.write`` per request (no
    logging machinery, no buffering to flush, so a tail of the log file is current), and the
    timestamp is formatted once per second: a few microseconds next to a prediction.
    """

    def __init__(self, app: Any, fd: int | None = None) -> None:
        self.app = app
        self.fd = sys.stdout.fileno() if fd is None else fd
        self._second = -1
        self._stamp = ""

    def __getattr__(self, name: str) -> Any:
        # the wrapped app's attributes (``serving``, ``state``) stay reachable
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_noting_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._write(scope, status, time.perf_counter() - start)

    def _write(self, scope: Any, status: int, seconds: float) -> None:
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        line = f"{self._stamp} {scope['method']} {scope['path']} {status or '-'} {seconds * 1000:.1f}ms\n"
        try:
            os.write(self.fd, line.encode(errors="replace"))
        except OSError:  # a closed or full log must not fail the request
            pass


def _check(workers: int, port: int, log_level: str) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError("workers", workers, "must be an integer >= 1")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInputError("port", port, "must be an integer from 0 (any free port) to 65535")
    if log_level not in LOG_LEVELS:
        raise InvalidInputError("log_level", log_level, f"must be one of {', '.join(LOG_LEVELS)}")


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _announce(what: str, host: str, port: int, workers: int) -> None:
    extra = f", {workers} workers" if workers > 1 else ""
    print(
        f"mltrack serve: {what} listening on {_url(host, port)}{extra} "
        "(POST /invocations, /predict; GET /ping, /health, /metadata, /version)",
        flush=True,
    )


@contextmanager
def _graceful_signals() -> Iterator[list[int]]:
    """Make SIGTERM/SIGINT a graceful stop that ends in a normal return.

    uvicorn installs its own handlers while it serves and, once drained, re-raises the
    signal it caught against the handlers it found: with the defaults that would kill
    the process with SIGTERM's status instead of exiting 0. The handlers found are
    these, which only note the signal (one arriving before uvicorn's own is set up is
    not lost: the server stops as soon as it has started).
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _no_gc_while_loading() -> Iterator[None]:
    """Keep the cyclic garbage collector off while the model and its framework load.

    Importing MLflow and a framework allocates about a million long-lived objects, and the
    collector would walk them again and again as they pile up: 10-15% of a cold start. Off,
    then frozen with what loaded (``ServingState.set_model`` freezes), then back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _uvicorn_config(app: Any, host: str, port: int, log_level: str, limits: ServingLimits, **options: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # uvicorn's line per request (logging machinery) is a real cost at thousands of requests
        # a second: only at debug, and never beside our own lighter AccessLog
        access_log=log_level in ("debug", "trace") and not access_log_enabled(),
        server_header=False,
        proxy_headers=False,  # client addresses are not used; skip parsing X-Forwarded-For per request
        # after it, uvicorn cancels the requests still in flight (a client still sending its
        # body, a prediction still awaited); the app exits past predictions still running
        timeout_graceful_shutdown=limits.shutdown_timeout_s,
        **options,
    )


def _run_one(app: Any, what: str, host: str, port: int, log_level: str, limits: ServingLimits) -> None:
    import uvicorn

    with _graceful_signals() as early:

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started and not self.should_exit:
                    bound = self.servers[0].sockets[0].getsockname() if self.servers else (host, port)
                    _announce(what, host, int(bound[1]), 1)
                    if early:  # a signal came between our handler and uvicorn's
                        self.should_exit = True

        server = Server(_uvicorn_config(app, host, port, log_level, limits))
        try:
            server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind the port
            raise MLTrackError(
                f"could not serve on {_url(host, port)} (exit status {exc.code})",
                hint="is another process using the port? pick another with --port (0: any free port)",
            ) from None
    if not server.started:
        raise MLTrackError(f"the server on {_url(host, port)} did not start", hint="see the log above")


def _run_workers(
    location: Any,
    what: str,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    limits: ServingLimits,
    **batching: Any,
) -> None:
    from uvicorn.supervisors import Multiprocess

    os.environ[WORKER_SPEC_ENV] = json.dumps(
        {
            "path": str(location.path),
            "name": location.name,
            "version": location.version,
            "max_body_size": int(limits.max_body_size),
            "max_concurrency": limits.max_concurrency,
            **batching,
        }
    )
    config = _uvicorn_config(
        "mltrack.serving.server:worker_app", host, port, log_level, limits, factory=True, workers=workers
    )
    try:
        sock = config.bind_socket()
    except SystemExit as exc:
        raise MLTrackError(
            f"could not bind {_url(host, port)} (exit status {exc.code})",
            hint="is another process using the port? pick another with --port (0: any free port)",
        ) from None
    _announce(what, host, int(sock.getsockname()[1]), workers)
    with _graceful_signals():
        Multiprocess(config, sockets=[sock]).run()


def worker_app() -> Any:
    """The app of one worker of a multi-worker server (uvicorn calls this in each worker)."""
    from mltrack.serving.app import create_app

    spec = json.loads(os.environ[WORKER_SPEC_ENV])
    with _no_gc_while_loading():
        model = load_located(ModelLocation(Path(spec["path"]), spec["name"], spec["version"]))
        app = create_app(
            model,
            max_batch_size=spec["max_batch_size"],
            max_wait_ms=spec["max_wait_ms"],
            max_body_size=spec["max_body_size"],
            max_concurrency=spec["max_concurrency"],
        )
    app.serving.exit_if_predicting = True
    return AccessLog(app) if access_log_enabled() else app


def _log_to_stderr(log_level: str) -> None:
    level = logging.DEBUG if log_level in ("debug", "trace") else getattr(logging, log_level.upper())
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def serve(
    model: str,
    *,
    version: int | str = "latest",
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    max_batch_size: int = 64,
    max_wait_ms: float = 2.0,
    max_body_size: int | str | None = None,
    max_concurrency: int | None = None,
    shutdown_timeout_s: int | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``model`` over HTTP until SIGTERM or SIGINT, then drain and return.

    Args:
        model: a registered model name, a ``models:/`` or ``runs:/`` URI, or a local MLflow
            model directory.
        version: which version of a registered model: a number, ``"latest"``, or an alias.
        host, port: where to listen (port 0: any free port; the line printed says which).
        workers: server processes; each loads the model.
        max_batch_size, max_wait_ms: micro-batching limits for batchable models.
        max_body_size: largest request body (bytes, or ``"100MiB"``); larger ones get 413.
        max_concurrency: most scoring requests a worker handles at once; more get 503.
        shutdown_timeout_s: after a signal, how long requests in flight may take to finish.
        log_level: uvicorn's log level; "debug" also logs every request.

    With ``MLTRACK_ACCESS_LOG=1`` in the environment (the local provider sets it) each request
    is logged as one line on stdout: time, method, path, status, duration.

    A limit left as None comes from ``MLTRACK_SERVE_<NAME>`` in the environment, else its
    default (100 MiB, 128 requests, 15 s; see ``mltrack.serving.limits``).
    """
    from mltrack.serving.app import _check_limits

    _check(workers, port, log_level)
    _check_limits(max_batch_size, max_wait_ms)
    limits = serving_limits(
        max_body_size=max_body_size, max_concurrency=max_concurrency, shutdown_timeout_s=shutdown_timeout_s
    )
    _log_to_stderr(log_level)

    with _no_gc_while_loading():
        location = locate_model(model, version)
        if workers == 1:
            from mltrack.serving.app import create_app

            served = load_located(location)
            app = create_app(
                served,
                max_batch_size=max_batch_size,
                max_wait_ms=max_wait_ms,
                max_body_size=int(limits.max_body_size),
                max_concurrency=limits.max_concurrency,
            )
            app.serving.exit_if_predicting = True
    if workers > 1:
        what = f"model {location.name!r} v{location.version}" if location.name else f"model at {location.path}"
        _run_workers(
            location,
            what,
            host,
            port,
            workers,
            log_level,
            limits,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
        )
        return
    _run_one(AccessLog(app) if access_log_enabled() else app, served.describe(), host, port, log_level, limits)
