"""Saved views of the runs page's charts workspace: list, save and delete them by name.

A view is the workspace's URL state (filter, columns, selection, tab, panels, grouping, the
parallel-coordinates and scatter choices) as a JSON object. It is stored on its experiment as
the tag ``mltrack.view.<name>``, so it lives in the MLflow store next to the runs it shows, goes
wherever the store goes, and ``mlflow ui`` shows the experiment unchanged apart from that tag.

The writes are guarded as every other write route (``actions.py``): the auth middleware covers
``/api/``, and ``actions.same_origin_guard`` refuses a request another site's page sent (CSRF).
A view's name and size are checked before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from mltrack import InvalidInputError
from mltrack.extend import MlflowStore
from mltrack_ui.actions import same_origin_guard
from mltrack_ui.json_response import StrictJSONResponse

TAG_PREFIX = "mltrack.view."
# Letters, digits, space, _ . - : all of them valid in an MLflow tag key, readable in a menu.
_NAME = re.compile(r"[\w.\- ]+")
MAX_NAME_LENGTH = 100
# The JSON of a view is a URL's worth of state; MLflow allows 20,000 characters per experiment tag.
MAX_VIEW_BYTES = 16_000
NAME_HINT = f"use 1 to {MAX_NAME_LENGTH} letters, digits, spaces, _ . or -"


def check_name(name: str) -> str:
    """``name`` if it can name a view (and so a tag key), else ``InvalidInputError`` naming the field."""
    if not name.strip() or name != name.strip():
        raise InvalidInputError("name", name, "must not be empty or start or end with a space", hint=NAME_HINT)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError("name", name, f"is {len(name)} characters long", hint=NAME_HINT)
    if not _NAME.fullmatch(name):
        raise InvalidInputError("name", name, "contains a character a view name cannot have", hint=NAME_HINT)
    return name


def list_views(store: MlflowStore, experiment_id: str) -> list[dict[str, Any]]:
    """The experiment's saved views, by name; a tag whose JSON was damaged elsewhere is skipped."""
    tags = store.client.get_experiment(experiment_id).tags
    views = []
    for key in sorted(tags):
        if not key.startswith(TAG_PREFIX):
            continue
        try:
            view = json.loads(tags[key])
        except ValueError:
            continue
        if isinstance(view, dict):
            views.append({"name": key[len(TAG_PREFIX) :], "experiment_id": experiment_id, "view": view})
    return views


def parse_view(raw: bytes) -> dict[str, Any]:
    """The request body as a view (a JSON object), its size checked before it is parsed."""
    if len(raw) > MAX_VIEW_BYTES:
        raise ViewTooLargeError(
            "view",
            f"{len(raw)} bytes",
            f"is larger than the {MAX_VIEW_BYTES} bytes a saved view may hold",
            hint="show fewer selected runs or panels in the view, then save it again",
        )
    try:
        view = json.loads(raw)
    except ValueError as error:
        raise InvalidInputError(
            "view", raw[:60].decode(errors="replace"), f"is not JSON ({error})", hint="send a JSON object"
        ) from None
    if not isinstance(view, dict):
        raise InvalidInputError("view", view, "must be a JSON object", hint='send an object such as {"tab": "charts"}')
    return view


def save_view(store: MlflowStore, experiment_id: str, name: str, view: dict[str, Any]) -> dict[str, Any]:
    check_name(name)
    store.client.get_experiment(experiment_id)  # 404 for an unknown experiment, before writing
    text = json.dumps(view, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    store.client.set_experiment_tag(experiment_id, TAG_PREFIX + name, text)
    return {"name": name, "experiment_id": experiment_id, "view": view}


def delete_view(store: MlflowStore, experiment_id: str, name: str) -> dict[str, Any]:
    check_name(name)
    if TAG_PREFIX + name not in store.client.get_experiment(experiment_id).tags:
        raise InvalidInputError("name", name, "is not a saved view of this experiment", hint="reload the page")
    store.client.delete_experiment_tag(experiment_id, TAG_PREFIX + name)
    return {"views": list_views(store, experiment_id)}


class ViewTooLargeError(InvalidInputError):
    """A view whose JSON is over ``MAX_VIEW_BYTES``: answered 413."""


async def _body(request: Request) -> bytes:
    # Read here, so the route itself stays synchronous (MLflow's client blocks) and the size is
    # checked before the JSON is parsed.
    return await request.body()


def _experiment(experiment_id: str) -> str:
    if not experiment_id.strip() or "\x00" in experiment_id:
        raise InvalidInputError(
            "experiment_id", experiment_id, "is not an experiment id", hint="choose an experiment on the runs page"
        )
    return experiment_id


def register(app: FastAPI, store: MlflowStore, allowed_origins: Collection[str] = ()) -> None:
    """Add ``/api/views`` to ``app``; its writes take the same Origin check as ``actions``'s."""

    @app.exception_handler(ViewTooLargeError)
    async def too_large(request: Request, exc: ViewTooLargeError) -> StrictJSONResponse:
        return StrictJSONResponse({"error": exc.message, "hint": exc.hint}, status_code=413)

    guard = [Depends(same_origin_guard(frozenset(allowed_origins)))]
    api = APIRouter(prefix="/api/views")

    @api.get("")
    def views(experiment_id: str) -> list[dict[str, Any]]:
        return list_views(store, _experiment(experiment_id))

    @api.put("/{name:path}", dependencies=guard)
    def put_view(name: str, experiment_id: str, raw: bytes = Depends(_body)) -> dict[str, Any]:
        check_name(name)
        return save_view(store, _experiment(experiment_id), name, parse_view(raw))

    @api.delete("/{name:path}", dependencies=guard)
    def remove_view(name: str, experiment_id: str) -> dict[str, Any]:
        return delete_view(store, _experiment(experiment_id), name)

    app.include_router(api)
