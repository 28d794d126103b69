"""The serving app: FastAPI routes over a loaded (or loading) model.

Routes: ``GET /ping`` (200, empty body, once the model is loaded; 503 before),
``GET /health`` (the same, as JSON with the model's name, version and flavour),
``GET /metadata`` (name, version, flavour, signature), ``GET /version`` (the MLflow
version, as MLflow's scoring server answers it), ``POST /invocations`` and
``POST /predict`` (MLflow's scoring protocol; answers ``{"predictions": ...}``).

Scoring requests are bounded (``limits.ServingLimits``): a body larger than the limit gets
413 as soon as its ``Content-Length`` or the bytes received so far exceed it, so it is never
held whole; beyond the limit of concurrent scoring requests, a request gets 503 at once.

The scoring routes are plain Starlette routes reading the raw body: FastAPI's pydantic
request models would double the cost of a one-row request. Every error is JSON:
``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mltrack._version import __version__
from mltrack.errors import InvalidInputError
from mltrack.serving.batching import MicroBatcher
from mltrack.serving.inference import Outcome, Scorer, internal_failure
from mltrack.serving.limits import ServingLimits, env_name, serving_limits
from mltrack.serving.loading import load_served_model, requirements_check_owed, warn_requirement_mismatches
from mltrack.serving.protocol import RequestError, error_body, parse_request

if TYPE_CHECKING:
    from mltrack.serving.loading import ServedModel

# importlib.metadata is imported only to name the served package's version, once per app.

logger = logging.getLogger("mltrack.serving")

JSON = "application/json"
#: bodies larger than this are parsed on a worker thread, not on the event loop
PARSE_INLINE_BYTES = 64 * 1024
SCORING_ROUTES = ("/invocations", "/predict")
ROUTES = "GET /ping, /health, /metadata, /version; POST /invocations, /predict"
REQUIREMENTS_CHECK_DELAY_S = 1.0


@functools.cache
def mlflow_version() -> str:
    """The installed MLflow's version, read from its package metadata (importing MLflow takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return "unknown"


def _check_limits(max_batch_size: int, max_wait_ms: float) -> None:
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise InvalidInputError("max_batch_size", max_batch_size, "must be an integer >= 1 (rows per batch)")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) or not 0 <= max_wait_ms <= 60_000:
        raise InvalidInputError("max_wait_ms", max_wait_ms, "must be a number of milliseconds between 0 and 60000")


class ServingState:
    """The model behind an app: loading, ready or failed, and the machinery that scores it."""

    def __init__(
        self,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        limits: ServingLimits | None = None,
        loader: Callable[[], ServedModel] | None = None,
    ) -> None:
        _check_limits(max_batch_size, max_wait_ms)
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.limits = limits if limits is not None else serving_limits()
        self.max_body_size = int(self.limits.max_body_size)
        self.max_concurrency = self.limits.max_concurrency
        #: scoring requests being read, queued or predicted (touched on the event loop only)
        self.in_flight = 0
        #: set by ``serve``: at shutdown, exit without waiting for predictions that outlived it
        self.exit_if_predicting = False
        self.model: ServedModel | None = None
        self.error: str | None = None
        self.scorer: Scorer | None = None
        self.batcher: MicroBatcher | None = None
        # a model that cannot batch is predicted concurrently, as MLflow's server does
        self.pool = ThreadPoolExecutor(thread_name_prefix="mltrack-serve")
        self.batch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mltrack-serve-batch")
        self._loader = loader
        self._loading: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.scorer is not None

    def set_model(self, model: ServedModel) -> None:
        scorer = Scorer(model)
        if model.batchable:
            self.batcher = MicroBatcher(
                scorer.score,
                self.batch_thread,
                max_batch_size=self.max_batch_size,
                max_wait_ms=self.max_wait_ms,
                batching=lambda: scorer.batching,
            )
        self.model = model
        # The model and its framework are long-lived objects by the hundred thousand; frozen,
        # the collector stops re-walking them, which otherwise stalls every request in flight
        # for 100+ ms at each full collection.
        gc.freeze()
        self.scorer = scorer  # last: `ready` turns true only when everything is in place

    def load_in_background(self) -> None:
        """Start loading the model on a thread (once); ``ready`` turns true when done."""
        with self._lock:
            if self._loader is None or self._loading is not None or self.ready:
                return
            self._loading = threading.Thread(target=self._load, name="mltrack-serve-load", daemon=True)
            self._loading.start()

    def _load(self) -> None:
        assert self._loader is not None
        try:
            self.set_model(self._loader())
        except Exception as exc:
            self.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            logger.error("mltrack serve: loading the model failed: %s", self.error, exc_info=exc)
            return
        assert self.model is not None
        logger.info("mltrack serve: %s loaded", self.model.describe())
        self.check_requirements()

    def check_requirements(self) -> None:
        """Warn (in the log) about model requirements this environment does not meet, if the
        model was loaded without that check; run once the server answers, so not in its way."""

        if self.model is not None and requirements_check_owed(self.model.path):
            try:
                warn_requirement_mismatches(self.model.path)
            except Exception as exc:  # a diagnostic: never a reason to stop serving
                logger.debug("mltrack serve: the requirements check failed: %s", exc)

    def not_ready(self) -> Response:
        self.load_in_background()
        if self.error is not None:
            message, code = f"the model failed to load: {self.error}", "MODEL_LOAD_FAILED"
        else:
            message, code = "the model is still loading; retry shortly", "TEMPORARILY_UNAVAILABLE"
        return Response(error_body(code, message), 503, media_type=JSON, headers={"Retry-After": "1"})

    async def answer(self, body: bytes, content_type: str | None) -> Outcome:
        """The outcome of one scoring request (never raises)."""
        scorer = self.scorer
        if scorer is None:
            response = self.not_ready()
            return Outcome(response.status_code, bytes(response.body))
        try:
            if len(body) > PARSE_INLINE_BYTES:
                loop = asyncio.get_running_loop()
                item = await loop.run_in_executor(self.pool, parse_request, body, content_type, scorer.spec)
            else:
                item = parse_request(body, content_type, scorer.spec)
        except RequestError as exc:
            return Outcome(exc.status, exc.body())
        try:
            if self.batcher is not None:
                return await self.batcher.submit(item)
            return await asyncio.get_running_loop().run_in_executor(self.pool, scorer.score_one, item)
        except Exception as exc:  # pragma: no cover - scorers answer errors themselves
            return internal_failure(exc)

    def busy(self) -> Outcome:
        """The answer beyond ``max_concurrency`` scoring requests."""
        message = (
            f"the server is already handling its limit of {self.max_concurrency} concurrent requests; retry "
            f"shortly (the limit is --max-concurrency or {env_name('max_concurrency')})"
        )
        return Outcome(503, error_body("TEMPORARILY_UNAVAILABLE", message))

    def too_large(self, size: int | None) -> Outcome:
        """The answer to a body over ``max_body_size`` (``size``: its Content-Length, if it declared one)."""
        limit = self.limits.max_body_size.human_readable(separator=" ")
        got = f" ({size:,} bytes)" if size is not None else ""
        message = (
            f"the request body{got} is larger than this server's limit of {limit}; send fewer rows per "
            f"request, or raise the limit (--max-body-size or {env_name('max_body_size')})"
        )
        return Outcome(413, error_body("REQUEST_TOO_LARGE", message))

    def declared_too_large(self, content_length: str | bytes | None) -> Outcome | None:
        """413 at once for a ``Content-Length`` over the limit, before any of the body is read."""
        if content_length is None:
            return None
        try:
            size = int(content_length)
        except ValueError:  # the HTTP server refuses a malformed one before the app sees it
            return None
        return self.too_large(size) if size > self.max_body_size else None

    async def score(self, request: Request) -> Response:
        """The scoring route, as a Starlette endpoint (taken when the app has middleware)."""
        if self.in_flight >= self.max_concurrency:
            return _response(self.busy())
        self.in_flight += 1
        try:
            outcome = self.declared_too_large(request.headers.get("content-length"))
            if outcome is None:
                parts: list[bytes] = []
                received = 0
                try:
                    async for chunk in request.stream():
                        received += len(chunk)
                        if received > self.max_body_size:
                            outcome = self.too_large(None)
                            break
                        parts.append(chunk)
                except ClientDisconnect:
                    return Response(b"", 499)  # nobody is listening any more
            if outcome is None:
                outcome = await self.answer(b"".join(parts), request.headers.get("content-type"))
        finally:
            self.in_flight -= 1
        return _response(outcome)

    async def score_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The scoring route as bare ASGI: what ``score`` does, without Starlette's layers."""
        if self.in_flight >= self.max_concurrency:
            await _send(send, self.busy())
            return
        self.in_flight += 1
        try:
            outcome = await self._score_asgi(scope, receive)
        except asyncio.CancelledError:
            # uvicorn cancels what is still in flight at its shutdown timeout. This is the
            # request's own task and only the answer follows, so answering ends it as surely
            # as re-raising would, and the client gets JSON instead of uvicorn's plain-text
            # 500 (with a traceback in the log for every such request)
            logger.warning("mltrack serve: a request still in flight at the shutdown timeout was answered 503")
            outcome = shutting_down()
        finally:
            self.in_flight -= 1
        if outcome is not None:
            await _send(send, outcome)

    async def _score_asgi(self, scope: Scope, receive: Receive) -> Outcome | None:
        content_type = content_length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
        too_large = self.declared_too_large(content_length)
        if too_large is not None:
            return too_large
        # counted as it arrives, so a chunked body without Content-Length is cut off at the
        # limit too instead of being held whole first
        chunks = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_size:
                return self.too_large(None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return await self.answer(chunks[0] if len(chunks) == 1 else b"".join(chunks), content_type)

    async def close(self) -> None:
        """Stop batching (the app may start again: a test client, a restarted lifespan).

        The executors stay: their idle threads cost nothing and exit with the interpreter.
        In a server run by ``serve`` (``exit_if_predicting``), a prediction still running now
        has outlived the shutdown timeout; the interpreter would wait for its thread at exit
        (a thread cannot be cancelled), so the process exits here instead.
        """
        if self.batcher is not None:
            await self.batcher.close()
        if self.exit_if_predicting and self.scorer is not None and self.scorer.active:
            logger.warning(
                "mltrack serve: %d prediction(s) still running after the shutdown timeout; exiting without them",
                self.scorer.active,
            )
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    def model_info(self) -> dict[str, Any]:
        model = self.model
        assert model is not None
        return {"name": model.name, "version": model.version, "flavour": model.flavour}


def shutting_down() -> Outcome:
    return Outcome(
        503,
        error_body("TEMPORARILY_UNAVAILABLE", "the server is shutting down and stopped this request; send it again"),
    )


def _response(outcome: Outcome) -> Response:
    return Response(outcome.body, outcome.status, media_type=JSON, headers=_extra_headers(outcome.status))


def _extra_headers(status: int) -> dict[str, str] | None:
    if status == 503:
        return {"Retry-After": "1"}
    if status == 413:
        # the rest of the body is unread: without this, the HTTP server would read (and drop)
        # all of it to find where the next request on the connection starts
        return {"Connection": "close"}
    return None


async def _send(send: Send, outcome: Outcome) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(outcome.body)).encode())]
    for name, value in (_extra_headers(outcome.status) or {}).items():
        headers.append((name.lower().encode(), value.encode()))
    await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
    await send({"type": "http.response.body", "body": outcome.body})


class ServingApp(FastAPI):
    """FastAPI, with ``POST /invocations`` and ``/predict`` answered ahead of its middleware.

    Starlette's and FastAPI's layers cost as much as parsing and checking a one-row
    request. The shortcut applies only while no middleware was added to the app (a host
    that adds authentication, say, gets every request through it) and only to exact
    paths; everything else, and those paths too once middleware exists, goes through
    FastAPI's routes, which answer the same.
    """

    serving: ServingState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in SCORING_ROUTES
            and not scope.get("root_path")
            and not self.user_middleware
        ):
            await self.serving.score_asgi(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def signature_json(signature: Any) -> dict[str, Any] | None:
    """The signature as JSON (MLflow's own column and tensor dicts), or None."""
    if signature is None:
        return None
    return {
        "inputs": signature.inputs.to_dict() if signature.inputs is not None else None,
        "outputs": signature.outputs.to_dict() if signature.outputs is not None else None,
        "params": signature.params.to_dict() if getattr(signature, "params", None) is not None else None,
    }


def _build(state: ServingState, on_startup: Callable[[], None] | None = None) -> ServingApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        check = None
        if state.ready:  # a second after startup: by then the server answers /ping
            check = asyncio.get_running_loop().call_later(
                REQUIREMENTS_CHECK_DELAY_S, state.pool.submit, state.check_requirements
            )
        yield
        if check is not None:
            check.cancel()
        await state.close()

    app = ServingApp(
        title="MLTrack model server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.serving = state

    async def ping(request: Request) -> Response:
        if not state.ready:
            return state.not_ready()
        return Response(b"", 200)

    async def health(request: Request) -> Response:
        if not state.ready:
            state.load_in_background()
            status = "failed" if state.error is not None else "loading"
            document = {"status": status, "error": state.error}
            return Response(orjson.dumps(document), 503, media_type=JSON, headers={"Retry-After": "1"})
        return Response(orjson.dumps({"status": "ok", "model": state.model_info()}), 200, media_type=JSON)

    async def metadata(request: Request) -> Response:
        if not state.ready or state.model is None:
            return state.not_ready()
        model = state.model

        document = {
            **state.model_info(),
            "signature": signature_json(model.signature),
            "batchable": model.batchable,
            "max_batch_size": state.max_batch_size,
            "max_wait_ms": state.max_wait_ms,
            "mltrack_version": __version__,
        }
        return Response(orjson.dumps(document, default=str), 200, media_type=JSON)

    async def version(request: Request) -> Response:
        # MLflow's scoring server answers its MLflow version, as bare text labelled JSON, and
        # MLflow's scoring client reads it as text: the same here, for clients of either
        return Response(mlflow_version().encode(), 200, media_type=JSON)

    for path, endpoint in (("/ping", ping), ("/health", health), ("/metadata", metadata), ("/version", version)):
        app.router.add_route(path, endpoint, methods=["GET"], include_in_schema=False)
    for path in SCORING_ROUTES:
        app.router.add_route(path, state.score, methods=["POST"], include_in_schema=False)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            code, message = "ENDPOINT_NOT_FOUND", f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            code, message = "METHOD_NOT_ALLOWED", f"{request.url.path} does not accept {request.method}"
        else:
            code, message = "BAD_REQUEST", str(exc.detail)
        return Response(
            error_body(code, f"{message} (routes: {ROUTES})"),
            exc.status_code,
            media_type=JSON,
            headers=dict(exc.headers or {}),
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.error("mltrack serve: %s %s failed", request.method, request.url.path, exc_info=exc)
        return Response(error_body("INTERNAL_ERROR", f"internal error: {type(exc).__name__}"), 500, media_type=JSON)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
    return app


def create_app(
    model: ServedModel,
    *,
    max_batch_size: int = 64,
    max_wait_ms: float = 2.0,
    max_body_size: int | str | None = None,
    max_concurrency: int | None = None,
) -> ServingApp:
    """The serving app for a loaded model (ready at once).

    Args:
        model: what ``load_served_model`` returns.
        max_batch_size: most rows predicted in one call when the model is batchable.
        max_wait_ms: longest a request waits for others to share its batch.
        max_body_size: largest request body, in bytes or with a unit (``"100MiB"``); larger
            ones get 413. None: ``MLTRACK_SERVE_MAX_BODY_SIZE``, else 100 MiB.
        max_concurrency: most scoring requests handled at once; more get 503. None:
            ``MLTRACK_SERVE_MAX_CONCURRENCY``, else 128.
    """
    limits = serving_limits(max_body_size=max_body_size, max_concurrency=max_concurrency)
    state = ServingState(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, limits=limits)
    state.set_model(model)
    return _build(state)


def create_lazy_app(
    model: str,
    *,
    version: int | str = "latest",
    max_batch_size: int = 64,
    max_wait_ms: float = 2.0,
    max_body_size: int | str | None = None,
    max_concurrency: int | None = None,
) -> FastAPI:
    """The serving app for a model it loads itself, on a thread, once the app starts.

    ``/ping`` and ``/health`` answer 503 until the model is loaded (and after a failed
    load, with the reason), so an orchestrator that polls them sees honest readiness
    while the app already accepts connections. For containers that must bind their port
    at once (Modal, SageMaker's health check). The limits are those of ``create_app``.
    """

    def loader() -> ServedModel:
        return load_served_model(model, version)

    limits = serving_limits(max_body_size=max_body_size, max_concurrency=max_concurrency)
    state = ServingState(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, limits=limits, loader=loader)
    return _build(state, on_startup=state.load_in_background)
