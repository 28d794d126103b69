"""The UI's web app: a JSON API over the MLflow store, plugin routes, and the built front end."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.background import BackgroundTask

from mltrack import InvalidInputError, MLTrackError, StoreError
from mltrack.extend import MlflowStore, get_store, mask_secrets
from mltrack_ui import actions, artifacts, deployments_view, registry, saved_views, store_summary, traces
from mltrack_ui.auth import SESSION_COOKIE, AuthPolicy, ProxyIdentity, auth_middleware, same_origin
from mltrack_ui.downsample import MIN_POINTS
from mltrack_ui.json_response import StrictJSONResponse
from mltrack_ui.metric_history import DEFAULT_POINTS, MAX_POINTS, HistoryQuery, metric_histories
from mltrack_ui.panels import collect_panels
from mltrack_ui.query_params import INT64_MAX, int_or_default, optional_int, parse_int
from mltrack_ui.runs_table import MAX_PAGE_SIZE, RunsQuery, run_document, search_runs_page
from mltrack_ui.settings import DEFAULT_HOST, DEFAULT_SESSION_MAX_AGE_S

logger = logging.getLogger("mltrack.ui")

SYSTEM_TAG_PREFIXES = ("mlflow.", "mltrack.")
MISSING_FRONTEND = """<!doctype html><meta charset="utf-8"><title>MLTrack</title>
<p>The MLTrack UI's front end is not built. In a checkout run <code>make install</code> (or
<code>make ui-build</code>); the JSON API is at <a href="/api/summary">/api/summary</a>.</p>"""


def static_dir() -> Path | None:
    """The built front end inside the package, if it was built."""
    folder = Path(str(resources.files("mltrack_ui") / "static"))
    return folder if (folder / "index.html").is_file() else None


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _error_response(status: int, message: str, hint: str | None = None) -> JSONResponse:
    return StrictJSONResponse({"error": message, "hint": hint}, status_code=status)


def _mlflow_status(exc: Exception) -> int:
    code = getattr(exc, "error_code", "")
    return {"RESOURCE_DOES_NOT_EXIST": 404, "INVALID_PARAMETER_VALUE": 400, "BAD_REQUEST": 400}.get(code, 502)


def _out_of_range(exc: BaseException) -> bool:
    """Whether the database refused a number in the request as too big for its column.

    The routes check their own numbers; this catches one that reached SQL another way:
    sqlite's ``OverflowError``, or PostgreSQL's "out of range" as a ``DataError``, raised
    directly or under MLflow's own exception. ``DataError`` is matched by name: it is the
    DB-API's (PEP 249) class for bad data, whichever driver or SQLAlchemy wrapper raised it.
    """
    return any(
        (isinstance(seen, OverflowError) and "too large to convert" in str(seen)) or type(seen).__name__ == "DataError"
        for seen in _chain(exc)
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


# What PostgreSQL, MySQL/MariaDB and sqlite say when a read-only database (a replica) is written to.
_READ_ONLY_MARKS = ("read-only transaction", "read only transaction", "--read-only option", "readonly database")
READ_ONLY_HINT = (
    "the UI reads a read-only store (a read replica?): set [tool.mltrack.plugins.ui] write_tracking_uri "
    "(MLTRACK_PLUGINS__UI__WRITE_TRACKING_URI) to the primary for the UI's actions"
)


def _read_only(exc: BaseException) -> bool:
    """Whether the database refused a write because it is read-only, raised directly or under
    MLflow's or SQLAlchemy's own exception."""
    return any(mark in str(seen).lower() for seen in _chain(exc) for mark in _READ_ONLY_MARKS)


def _refuse_nul(request: Request) -> None:
    """Refuse a NUL character in any query or path value (PostgreSQL cannot even compare one)."""
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if "\x00" in str(value):
            raise InvalidInputError(name, value, "contains a NUL character", hint=f"remove it from {name}")


OUT_OF_RANGE_HINT = f"use whole numbers between {-INT64_MAX - 1} and {INT64_MAX}"


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    """The first problem FastAPI found, as an error naming the parameter and a hint."""
    problem = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in problem.get("loc", ())]
    where, name = (location[0], ".".join(location[1:])) if location else ("request", "")
    kind = {"query": "query parameter", "path": "path parameter", "body": "body field"}.get(where, where)
    label = f"{kind} {name}" if name else "the request body"
    if problem.get("type") == "missing":
        return f"{label} is missing", f"add {name or 'a JSON body'} to the request"
    shown = repr(problem.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    message = f"{label}={shown}: {str(problem.get('msg', 'is invalid')).lower()}"
    return message, f"fix {name or 'the body'}; docs/ui.md lists each route's parameters"


class Login(BaseModel):
    token: str


def create_app(
    *,
    tracking_uri: str | None = None,
    host: str = DEFAULT_HOST,
    auth_token: str | None = None,
    session_secret: str | None = None,
    session_max_age_s: int = DEFAULT_SESSION_MAX_AGE_S,
    trusted_proxy_user_header: str | None = None,
    trusted_proxies: Sequence[str] = (),
    refresh_deployments: bool = True,
    frontend: Path | None = None,
    cors_origins: Sequence[str] = (),
    artifacts_server: str | None = None,
    write_tracking_uri: str | None = None,
) -> FastAPI:
    """The UI app for one store. Raises ``ConfigError`` for a non-loopback ``host`` with neither a
    token nor a trusted proxy user header. ``artifacts_server``: the tracking server that serves
    proxied artifacts when ``tracking_uri`` is its database. ``write_tracking_uri``: the store the
    actions write to when ``tracking_uri`` is a read replica (its primary)."""
    proxy = None if trusted_proxy_user_header is None else ProxyIdentity(trusted_proxy_user_header, trusted_proxies)
    policy = AuthPolicy(
        host, auth_token, session_secret=session_secret, session_max_age_s=session_max_age_s, proxy=proxy
    )
    store: MlflowStore = get_store(tracking_uri)
    writes: MlflowStore = get_store(write_tracking_uri) if write_tracking_uri else store
    # Strict JSON for every route, plugins' routers included (they inherit the default class).
    app = FastAPI(
        title="MLTrack UI",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=StrictJSONResponse,
    )
    app.middleware("http")(auth_middleware(policy))
    # JSON pages and the front end's scripts shrink ~5x; matters once the UI is used over a network.
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    allowed_origins = frozenset(cors_origins)
    if allowed_origins:
        # Added last, so outermost: a preflight is answered before the auth check (it carries no
        # credentials), and only the listed origins may read answers or send the login cookie.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=sorted(allowed_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],  # the write routes (actions.py)
            allow_headers=["Content-Type", "Authorization"],
            max_age=600,
        )

    @app.exception_handler(MLTrackError)
    async def mltrack_error(request: Request, exc: MLTrackError) -> JSONResponse:
        # A store that refuses the UI's own credentials is the upstream's failure, not bad input.
        status = 404 if isinstance(exc, LookupError) else 502 if isinstance(exc, StoreError) else 400
        return _error_response(status, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is a 422 {"detail": [...]}; the API documents 400 {"error", "hint"}.
        return _error_response(400, *_validation_message(exc))

    from mlflow.exceptions import MlflowException

    @app.exception_handler(MlflowException)
    async def mlflow_error(request: Request, exc: MlflowException) -> JSONResponse:
        if _out_of_range(exc):
            return _error_response(400, "a number in the request is out of range for the store", OUT_OF_RANGE_HINT)
        if _read_only(exc):
            return _error_response(409, "the store refused the change: it is read-only", READ_ONLY_HINT)
        return _error_response(_mlflow_status(exc), exc.message.splitlines()[0])

    @app.exception_handler(Exception)
    async def other_error(request: Request, exc: Exception) -> JSONResponse:
        if _out_of_range(exc):
            return _error_response(400, "a number in the request is out of range for the store", OUT_OF_RANGE_HINT)
        if _read_only(exc):
            return _error_response(409, "the store refused the change: it is read-only", READ_ONLY_HINT)
        logger.exception("mltrack-ui: unexpected error on %s", request.url.path)
        return _error_response(500, f"internal error: {type(exc).__name__}")

    api = APIRouter(prefix="/api", dependencies=[Depends(_refuse_nul)])

    @api.get("/auth")
    def auth_status(request: Request) -> dict[str, Any]:
        identity = policy.identify(request)
        return {
            "required": policy.required,
            "authenticated": identity is not None,
            # the name an authenticating proxy gave; a token or its session names nobody
            "user": identity.user if identity is not None else None,
            "token_login": policy.token_login,
        }

    @api.post("/auth/login")
    def login(body: Login) -> Response:
        if not policy.required:
            return Response(status_code=204)
        if not policy.token_login:
            return _error_response(400, "this UI has no token to log in with", policy.login_hint())
        if not policy.token_matches(body.token):
            return _error_response(401, "wrong token")
        response = Response(status_code=204)
        response.set_cookie(
            SESSION_COOKIE,
            policy.session_value(),
            max_age=policy.session_max_age_s,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    @api.post("/auth/logout")
    def logout(request: Request) -> Response:
        # A form on another site could otherwise post here and sign the user out.
        if not same_origin(request) and request.headers.get("origin") not in allowed_origins:
            return _error_response(
                403, "logout is accepted only from the UI's own pages", "sign out from the UI in your browser"
            )
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @api.get("/summary")
    def summary() -> dict[str, Any]:
        return store_summary.dashboard(store)

    @api.get("/experiments")
    def experiments() -> list[dict[str, Any]]:
        return store_summary.list_experiments(store)

    @api.get("/runs")
    def runs(
        experiment_ids: str | None = None,
        filter: str = "",
        order_by: Annotated[list[str] | None, Query()] = None,
        page_size: str | None = None,
        page_token: str | None = None,
        columns: str | None = None,
        include_deleted: bool = False,
    ) -> JSONResponse:
        ids = _split(experiment_ids) or [e.experiment_id for e in store.client.search_experiments()]
        query = RunsQuery(
            experiment_ids=ids,
            filter_string=filter,
            order_by=[o for o in order_by or [] if o.strip()],
            page_size=int_or_default("page_size", page_size, 100, minimum=1, maximum=MAX_PAGE_SIZE),
            page_token=page_token,
            columns=None if columns is None else _split(columns),
            include_deleted=include_deleted,
        )
        return StrictJSONResponse(search_runs_page(store, query))

    @api.get("/runs/{run_id}")
    def run(run_id: str) -> JSONResponse:
        found = store.client.get_run(run_id)
        document = run_document(found)
        # with the run, so its page shows the experiment's name at once, not its id first
        document["experiment_name"] = store.client.get_experiment(found.info.experiment_id).name
        document["artifact_uri"] = mask_secrets(found.info.artifact_uri)
        document["system"] = {k: v for k, v in document["tags"].items() if k.startswith(SYSTEM_TAG_PREFIXES)}
        document["tags"] = {k: v for k, v in document["tags"].items() if not k.startswith(SYSTEM_TAG_PREFIXES)}
        return StrictJSONResponse(document)

    @api.get("/runs/{run_id}/panels")
    def run_panels(run_id: str) -> list[dict[str, Any]]:
        found = store.client.get_run(run_id)
        document = run_document(found)
        document["artifact_uri"] = found.info.artifact_uri
        return collect_panels("ui_run_panels", run=document)

    @api.get("/runs/{run_id}/artifacts")
    def artifact_list(run_id: str, path: str = "") -> list[dict[str, Any]]:
        return artifacts.list_artifacts(store, run_id, path, artifacts_server)

    @api.get("/runs/{run_id}/artifacts/preview")
    def artifact_preview(run_id: str, path: str) -> dict[str, Any]:
        return artifacts.preview(store, run_id, path, artifacts_server)

    @api.get("/runs/{run_id}/artifacts/file")
    def artifact_file(run_id: str, path: str, inline: bool = False) -> FileResponse:
        found = artifacts.open_artifact(store, run_id, path, artifacts_server)
        disposition = "inline" if inline and found.inline else "attachment"
        response = FileResponse(
            found.path,
            media_type=found.media_type if disposition == "inline" else "application/octet-stream",
            filename=Path(path).name,
            content_disposition_type=disposition,
            background=BackgroundTask(found.close),
        )
        # Whatever a run stored (HTML, SVG), the browser must not run it in our origin.
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @api.get("/metrics/history")
    def histories(
        run_ids: str,
        keys: str,
        max_points: str | None = None,
        step_min: str | None = None,
        step_max: str | None = None,
    ) -> JSONResponse:
        query = HistoryQuery(
            _split(run_ids),
            _split(keys),
            int_or_default("max_points", max_points, DEFAULT_POINTS, minimum=MIN_POINTS, maximum=MAX_POINTS),
            optional_int("step_min", step_min),
            optional_int("step_max", step_max),
        )
        return StrictJSONResponse({"series": metric_histories(store, query)})

    @api.get("/models")
    def models() -> list[dict[str, Any]]:
        return registry.list_models(store)

    @api.get("/model")
    def model(name: str) -> dict[str, Any]:
        document = registry.get_model(store, name)
        deployed = deployments_view.list_deployments(name)["deployments"]
        for version in document["versions"]:
            version["deployments"] = [d for d in deployed if d.get("model_version") == version["version"]]
        return document

    @api.get("/model/panels")
    def model_panels(name: str, version: str) -> list[dict[str, Any]]:
        number = parse_int("version", version, minimum=1, maximum=registry.MAX_VERSION)
        return collect_panels("ui_model_panels", model=registry.get_version(store, name, number))

    @api.get("/deployments")
    def deployments(model_name: str | None = None, refresh: bool = False) -> dict[str, Any]:
        return deployments_view.list_deployments(model_name, refresh=refresh and refresh_deployments)

    app.include_router(api)
    traces.register(app, store)
    # A replica refuses writes: the actions and saved views go to the primary where one is named.
    actions.register(app, writes, allowed_origins)
    saved_views.register(app, writes, allowed_origins)

    @app.get("/-/plugins.json")
    def plugins_json() -> list[dict[str, Any]]:
        from mltrack import get_plugin_manager

        return [info.as_dict() for info in get_plugin_manager().plugin_infos()]

    _mount_plugin_routes(app)

    @app.get("/api/{rest:path}", include_in_schema=False)
    def unknown_api(rest: str) -> JSONResponse:
        return _error_response(404, f"no API route /api/{rest}")

    _mount_frontend(app, frontend if frontend is not None else static_dir())
    return app


def _mount_plugin_routes(app: FastAPI) -> None:
    """Mount each plugin's routers under ``/-/<plugin>/`` so plugins cannot collide."""
    from mltrack import get_plugin_manager

    pending: list[APIRouter] = []
    # call_each runs one implementation, then yields its plugin's name: what is pending then
    # was registered by that plugin.
    for plugin, _ in get_plugin_manager().call_each("ui_register_routes", register=pending.append):
        for router in pending:
            app.include_router(router, prefix=f"/-/{plugin}")
        pending.clear()


def _mount_frontend(app: FastAPI, folder: Path | None) -> None:
    if folder is None:

        @app.get("/", include_in_schema=False)
        def missing() -> HTMLResponse:
            return HTMLResponse(MISSING_FRONTEND)

        return
    from starlette.staticfiles import StaticFiles

    app.mount("/", StaticFiles(directory=folder, html=True), name="frontend")
