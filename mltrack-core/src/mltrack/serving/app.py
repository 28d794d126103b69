"""The serving app: FastAPI routes over a loaded (or loading) model.

Routes: ``GET /ping`` (200, empty body, once the model is loaded; 503 before),
``GET /health`` (the same, as JSON with the model's name, version and flavour),
``GET /metadata`` (name, version, flavour, signature), ``POST /invocations`` and
``POST /predict`` (MLflow's scoring protocol; answers ``{"predictions": ...}``).

The scoring routes are plain Starlette routes reading the raw body: FastAPI's pydantic
request models would double the cost of a one-row request. Every error is JSON:
``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mltrack.errors import InvalidInputError
from mltrack.serving.batching import MicroBatcher
from mltrack.serving.inference import Outcome, Scorer, failure
from mltrack.serving.protocol import RequestError, error_body, parse_request

if TYPE_CHECKING:
    from mltrack.serving.loading import ServedModel

logger = logging.getLogger("mltrack.serving")

JSON = "application/json"
#: bodies larger than this are parsed on a worker thread, not on the event loop
PARSE_INLINE_BYTES = 64 * 1024
SCORING_ROUTES = ("/invocations", "/predict")
REQUIREMENTS_CHECK_DELAY_S = 1.0


def _check_limits(max_batch_size: int, max_wait_ms: float) -> None:
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise InvalidInputError("max_batch_size", max_batch_size, "must be an integer >= 1 (rows per batch)")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) or not 0 <= max_wait_ms <= 60_000:
        raise InvalidInputError("max_wait_ms", max_wait_ms, "must be a number of milliseconds between 0 and 60000")


class ServingState:
    """The model behind an app: loading, ready or failed, and the machinery that scores it."""

    def __init__(
        self, *, max_batch_size: int, max_wait_ms: float, loader: Callable[[], ServedModel] | None = None
    ) -> None:
        _check_limits(max_batch_size, max_wait_ms)
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
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
        from mltrack.serving.loading import requirements_check_owed, warn_requirement_mismatches

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
            return failure(exc)

    async def score(self, request: Request) -> Response:
        """The scoring route, as a Starlette endpoint."""
        outcome = await self.answer(await request.body(), request.headers.get("content-type"))
        headers = {"Retry-After": "1"} if outcome.status == 503 else None
        return Response(outcome.body, outcome.status, media_type=JSON, headers=headers)

    async def score_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The scoring route as bare ASGI: what ``score`` does, without Starlette's layers."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        outcome = await self.answer(b"".join(chunks), content_type)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(outcome.body)).encode())]
        if outcome.status == 503:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        await send({"type": "http.response.body", "body": outcome.body})

    async def close(self) -> None:
        """Stop batching (the app may start again: a test client, a restarted lifespan).

        The executors stay: their idle threads cost nothing and exit with the interpreter.
        """
        if self.batcher is not None:
            await self.batcher.close()

    def model_info(self) -> dict[str, Any]:
        model = self.model
        assert model is not None
        return {"name": model.name, "version": model.version, "flavour": model.flavour}


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


def _build(state: ServingState, on_startup: Callable[[], None] | None = None) -> FastAPI:
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
        from mltrack._version import __version__

        document = {
            **state.model_info(),
            "signature": signature_json(model.signature),
            "batchable": model.batchable,
            "max_batch_size": state.max_batch_size,
            "max_wait_ms": state.max_wait_ms,
            "mltrack_version": __version__,
        }
        return Response(orjson.dumps(document, default=str), 200, media_type=JSON)

    for path, endpoint in (("/ping", ping), ("/health", health), ("/metadata", metadata)):
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
        routes = "GET /ping, /health, /metadata; POST /invocations, /predict"
        return Response(
            error_body(code, f"{message} (routes: {routes})"),
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


def create_app(model: ServedModel, *, max_batch_size: int = 64, max_wait_ms: float = 2.0) -> FastAPI:
    """The serving app for a loaded model (ready at once).

    Args:
        model: what ``load_served_model`` returns.
        max_batch_size: most rows predicted in one call when the model is batchable.
        max_wait_ms: longest a request waits for others to share its batch.
    """
    state = ServingState(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
    state.set_model(model)
    return _build(state)


def create_lazy_app(
    model: str, *, version: int | str = "latest", max_batch_size: int = 64, max_wait_ms: float = 2.0
) -> FastAPI:
    """The serving app for a model it loads itself, on a thread, once the app starts.

    ``/ping`` and ``/health`` answer 503 until the model is loaded (and after a failed
    load, with the reason), so an orchestrator that polls them sees honest readiness
    while the app already accepts connections. For containers that must bind their port
    at once (Modal, SageMaker's health check).
    """
    from mltrack.serving.loading import load_served_model

    def loader() -> ServedModel:
        return load_served_model(model, version)

    state = ServingState(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, loader=loader)
    return _build(state, on_startup=state.load_in_background)
