"""Write routes: rename a run, edit its description and tags, delete and restore it, set and remove
model aliases.

Every route here changes the store, so each one is guarded three ways before anything is written:
- authentication, when the UI has it (the auth middleware covers all of ``/api/``);
- the request's origin (CSRF): a browser page of another site can make the user's browser send
  the session cookie, but it cannot hide where it comes from. ``Sec-Fetch-Site`` and ``Origin``
  (every browser sends one of them on POST/PATCH/PUT/DELETE) and ``Referer`` must name this UI;
  a request with none of them comes from a script, not a web page, and is let through;
- the input, checked with MLflow's own rules (names, tag keys, lengths, reserved aliases), all of
  it before the first write, so a refused request changes nothing.
A run's name, description and tags are written in one ``log_batch`` (one transaction in MLflow's
database store); a tag to remove must exist, checked before that batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mltrack import InvalidInputError, InvalidKeyError, MLTrackError
from mltrack.extend import MlflowStore, check_key
from mltrack_ui.runs_table import COLUMN_KEYS

# MLflow's limits (mlflow.utils.validation), checked here so a refusal names the field.
MAX_RUN_NAME_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 8000
MAX_ALIAS_LENGTH = 255
NOTE_TAG = "mlflow.note.content"
RUN_NAME_TAG = "mlflow.runName"
# Tags MLflow and MLTrack set themselves: shown, never edited from the UI.
SYSTEM_TAG_PREFIXES = ("mlflow.", "mltrack.")
_ALIAS = re.compile(r"[\w\-]+")
_VERSION_ALIAS = re.compile(r"[vV]\d+")
DELETED = "deleted"


class CrossOriginError(MLTrackError):
    """A write request sent by a page of another site."""


class RunChanges(BaseModel):
    """``PATCH /api/runs/{run_id}``: what to change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="the run's new name")
    description: str | None = Field(None, description="the run's description (MLflow's mlflow.note.content)")
    set_tags: dict[str, str] = Field(default_factory=dict, description="tags to add or change")
    delete_tags: list[str] = Field(default_factory=list, description="tags to remove (each must exist)")


class AliasChange(BaseModel):
    """``PUT /api/model/aliases``: point ``alias`` of model ``name`` at ``version`` (moves it if set)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    alias: str
    version: int = Field(ge=1)


def _host_of(url: str) -> str:
    # host[:port] only: behind a TLS-terminating proxy the UI sees http while the page is https
    return urlsplit(url).netloc.lower()


def same_origin_guard(allowed_origins: Collection[str]) -> Callable[[Request], None]:
    """A dependency refusing (403) a write that a page of another origin made the browser send;
    ``allowed_origins`` (the UI's ``cors_origins``: a hosted front end) are let through."""

    def guard(request: Request) -> None:
        if request.headers.get("origin") in allowed_origins:
            return
        require_same_origin(request)

    return guard


def require_same_origin(request: Request) -> None:
    """Refuse (403) a write that a page of another origin made the browser send."""
    own = request.headers.get("host", "").lower()
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    referer = request.headers.get("referer")
    if site is not None and site not in ("same-origin", "none"):
        sender = origin or site
    elif origin is not None and origin != "null" and _host_of(origin) != own:
        sender = origin
    elif origin == "null":  # a sandboxed frame or a file: page hides its origin
        sender = "an opaque origin"
    elif origin is None and referer is not None and _host_of(referer) != own:
        sender = _host_of(referer)
    else:
        return
    raise CrossOriginError(
        f"refused a change sent from {sender}: changes are accepted only from this UI's own pages ({own})",
        hint="make the change in the UI itself, or from a script (which sends no Origin header)",
    )


def _check_text(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInputError(
            field, value, f"is {len(value)} characters long; MLflow stores at most {limit}", hint=f"shorten the {field}"
        )
    if "\x00" in value:
        raise InvalidInputError(field, value, "contains a NUL character", hint="remove it")
    return value


def _check_user_tag(key: str) -> str:
    check_key("tag", key)
    if key.startswith(SYSTEM_TAG_PREFIXES):
        raise InvalidKeyError(
            "tag name",
            key,
            "is a system tag (mlflow.* and mltrack.* are set by MLflow and MLTrack)",
            hint="choose a name without the mlflow. or mltrack. prefix; rename the run or edit its "
            "description with the name and description fields",
        )
    return key


def check_alias(alias: str) -> str:
    """``alias`` if MLflow accepts it as a model alias, else ``InvalidInputError``."""
    hint = "use letters, digits, _ and -, not 'latest' or v<number> (MLflow reserves those)"
    if not _ALIAS.fullmatch(alias):
        raise InvalidInputError("alias", alias, "may contain only letters, digits, _ and -", hint=hint)
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidInputError("alias", alias, f"is longer than MLflow's {MAX_ALIAS_LENGTH} characters", hint=hint)
    if alias.lower() == "latest" or _VERSION_ALIAS.fullmatch(alias):
        raise InvalidInputError("alias", alias, "is reserved by MLflow", hint=hint)
    return alias


def _run_state(store: MlflowStore, run_id: str) -> dict[str, Any]:
    run = store.client.get_run(run_id)
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "lifecycle_stage": run.info.lifecycle_stage,
        "description": tags.get(NOTE_TAG, ""),
        "tags": {k: v for k, v in tags.items() if not k.startswith(SYSTEM_TAG_PREFIXES)},
    }


def update_run(store: MlflowStore, run_id: str, changes: RunChanges) -> dict[str, Any]:
    """Apply ``changes`` to run ``run_id`` after checking all of them; the run as it is afterwards."""
    from mlflow.entities import RunTag

    tags: dict[str, str] = {}
    if changes.name is not None:
        if not changes.name.strip():
            raise InvalidInputError("name", changes.name, "must not be empty", hint="type a name for the run")
        tags[RUN_NAME_TAG] = _check_text("name", changes.name, MAX_RUN_NAME_LENGTH)
    if changes.description is not None:
        tags[NOTE_TAG] = _check_text("description", changes.description, MAX_TAG_VALUE_LENGTH)
    for key, value in changes.set_tags.items():
        tags[_check_user_tag(key)] = _check_text(f"tag {key!r} value", value, MAX_TAG_VALUE_LENGTH)
    removed = [_check_user_tag(key) for key in changes.delete_tags]
    both = sorted(set(removed) & set(changes.set_tags))
    if both:
        raise InvalidInputError("delete_tags", both, "are also in set_tags", hint="either set a tag or remove it")
    run = store.client.get_run(run_id)  # 404 for an unknown run, before anything is written
    if run.info.lifecycle_stage == DELETED:
        raise InvalidInputError("run", run_id, "is deleted", hint="restore it first")
    missing = sorted(key for key in removed if key not in run.data.tags)
    if missing:
        raise InvalidInputError("delete_tags", missing, "are not tags of this run", hint="reload the page")
    if tags:
        store.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    for key in removed:
        store.client.delete_tag(run_id, key)
    return _run_state(store, run_id)


def set_lifecycle(store: MlflowStore, run_id: str, *, deleted: bool) -> dict[str, Any]:
    """Soft-delete (MLflow's delete_run) or restore run ``run_id``; doing it twice changes nothing."""
    run = store.client.get_run(run_id)
    if (run.info.lifecycle_stage == DELETED) != deleted:
        if deleted:
            store.client.delete_run(run_id)
        else:
            store.client.restore_run(run_id)
    return _run_state(store, run_id)


def _model_aliases(store: MlflowStore, name: str) -> dict[str, Any]:
    model = store.client.get_registered_model(name)
    return {"name": model.name, "aliases": {alias: int(v) for alias, v in (model.aliases or {}).items()}}


def set_alias(store: MlflowStore, change: AliasChange) -> dict[str, Any]:
    check_alias(change.alias)
    store.client.get_model_version(change.name, str(change.version))  # 404 before writing
    store.client.set_registered_model_alias(change.name, change.alias, str(change.version))
    return _model_aliases(store, change.name)


def delete_alias(store: MlflowStore, name: str, alias: str) -> dict[str, Any]:
    check_alias(alias)
    if alias not in _model_aliases(store, name)["aliases"]:
        raise InvalidInputError("alias", alias, f"is not an alias of model {name!r}", hint="reload the page")
    store.client.delete_registered_model_alias(name, alias)
    return _model_aliases(store, name)


def register(app: FastAPI, store: MlflowStore, allowed_origins: Collection[str] = ()) -> None:
    """Add the write routes (under ``/api``) and their 403 for cross-origin requests to ``app``;
    pages from ``allowed_origins`` (a hosted front end) may write too."""

    @app.exception_handler(CrossOriginError)
    async def cross_origin(request: Request, exc: CrossOriginError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=403)

    app.include_router(router(store, allowed_origins))


def router(store: MlflowStore, allowed_origins: Collection[str] = ()) -> APIRouter:
    """The write routes (under ``/api``)."""
    api = APIRouter(prefix="/api", dependencies=[Depends(same_origin_guard(frozenset(allowed_origins)))])

    @api.patch("/runs/{run_id}")
    def patch_run(run_id: str, changes: RunChanges) -> dict[str, Any]:
        updated = update_run(store, run_id, changes)
        # a tag set here on a finished run would otherwise show as a column only at the next full read
        COLUMN_KEYS.clear()
        return updated

    @api.post("/runs/{run_id}/delete")
    def delete_run(run_id: str) -> dict[str, Any]:
        return set_lifecycle(store, run_id, deleted=True)

    @api.post("/runs/{run_id}/restore")
    def restore_run(run_id: str) -> dict[str, Any]:
        return set_lifecycle(store, run_id, deleted=False)

    @api.put("/model/aliases")
    def put_alias(change: AliasChange) -> dict[str, Any]:
        return set_alias(store, change)

    @api.delete("/model/aliases")
    def remove_alias(name: str, alias: str) -> dict[str, Any]:
        return delete_alias(store, name, alias)

    return api
