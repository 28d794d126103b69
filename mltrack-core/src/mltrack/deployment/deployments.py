"""Deployments: ``mltrack.deploy`` and the record of every deployment, kept in the store.

A deployment is identified by ``<provider>/<name>`` (``local/churn``); ``name`` defaults to
the model's name made URL-safe. Deploying again under the same id replaces it (the provider
updates its endpoint; the old record is marked ``deleted``, "replaced by v<N>").

Records live on the served model version as the tag ``mltrack.deployment.<provider>.<name>``
(a JSON document: version, alias, provider, config, URL, state, times, the provider's
details) plus the marker tag ``mltrack.deployed``. So the registry shows what each version
serves, and ``mltrack deployments list``, the UI and any other machine using the same
tracking server find them, with plain MLflow as the only dependency. Secrets never reach a
record: the config is stored as pydantic dumps it, with ``SecretStr`` values masked.

Deploys and deletes of one id on one machine take turns: each holds an inter-process lock
(``flock`` on ``<data_dir>/deployments/<provider>/<name>.lock``) from reading the current
record to recording what the provider did, so a second one sees the first's result and
replaces or deletes it instead of racing it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mltrack.deployment.providers import (
    DeploymentState,
    DeploymentStatus,
    DeployPlan,
    DeployProvider,
    ModelRef,
    Progress,
)
from mltrack.errors import (
    DeploymentError,
    DeploymentNotFoundError,
    DeployTimeoutError,
    InvalidInputError,
)
from mltrack.storage.store import get_store

# mlflow, the plugin manager and the settings are imported inside functions: the provider contract that plugins import
# at `mltrack --help` stays light (benchmarks/import_time.py).

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger("mltrack.deploy")

TAG_PREFIX = "mltrack.deployment."
MARKER_TAG = "mltrack.deployed"
#: provider id -> the extra that installs it
#: MLflow's limit on a model version tag's value
MAX_RECORD_CHARS = 5000
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
LOCK_POLL_S = 0.05


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Deployment:
    """One recorded deployment: which model version, where, in which state."""

    name: str
    provider: str
    model_name: str
    model_version: int
    alias: str | None
    config: dict[str, Any]
    state: DeploymentState = DeploymentState.PENDING
    url: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def tag_key(self) -> str:
        return f"{TAG_PREFIX}{self.provider}.{self.name}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return {"id": self.id, "status": self.state.value, **data}

    def to_json(self) -> str:
        data = asdict(self)
        data["state"] = self.state.value
        return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        data = json.loads(text)
        data["state"] = DeploymentState(data["state"])
        return cls(**data)

    def with_status(self, status: DeploymentStatus) -> Deployment:
        return replace(
            self,
            state=status.state,
            url=status.url or self.url,
            message=status.message,
            details={**self.details, **status.details},
            updated_at=_now(),
        )

    # conveniences that call the provider (the public API's `Deployment` object)

    def refresh(self) -> Deployment:
        """This deployment with its live status from the provider (also saved to the record)."""
        return refresh(self)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Send ``data`` (a DataFrame, dict of columns, list of records, array or scoring
        payload) to the deployment; returns its predictions."""
        return get_provider(self.provider).predict(self, to_scoring_payload(data, params))

    def logs(self, tail: int = 100) -> list[str]:
        return get_provider(self.provider).logs(self, tail=tail)

    def delete(self) -> Deployment:
        return delete_deployment(self.id)

    def wait(self, timeout: float = 600.0) -> Deployment:
        return wait_until_final(self, timeout=timeout)


# -- providers ------------------------------------------------------------------------------


def providers() -> dict[str, type[DeployProvider[Any]]]:
    """Every registered deploy provider class by name."""
    from mltrack.plugins.manager import get_plugin_manager

    return dict(get_plugin_manager().objects("deploy_providers"))


def provider_class(name: str) -> type[DeployProvider[Any]]:
    from mltrack.plugins.manager import get_plugin_manager

    cls: type[DeployProvider[Any]] = get_plugin_manager().lookup("deploy_providers", name)
    return cls


def get_provider(name: str) -> DeployProvider[Any]:
    """The provider ``name``, built with its settings from ``[tool.mltrack.plugins.<name>]``."""
    from mltrack.config.settings import config_error_from, get_settings

    cls = provider_class(name)
    raw = get_settings().plugins.get(name, {})
    try:
        settings = cls.Settings.model_validate(raw)
    except ValidationError as exc:
        raise config_error_from(exc, prefix=("plugins", name), plugin=name) from None
    return cls(settings)


def validate_config(cls: type[DeployProvider[Any]], config: dict[str, Any] | BaseModel | None) -> BaseModel:
    """``config`` as the provider's ``DeploymentConfig``; every bad field is named at once."""
    if isinstance(config, cls.DeploymentConfig):
        return config
    if isinstance(config, BaseModel):
        config = config.model_dump()
    if config is not None and not isinstance(config, dict):
        raise InvalidInputError("config", config, "must be a dict of deployment settings")
    try:
        return cls.DeploymentConfig.model_validate(config or {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(config)"
            shown = f" = {error['input']!r}" if error["type"] != "missing" else ""
            problems.append(f"{where}{shown}: {error['msg']}")
        fields = sorted(cls.DeploymentConfig.model_fields)
        raise InvalidInputError(
            "config",
            config,
            f"is not a valid {cls.name!r} deployment config: " + "; ".join(problems),
            hint=f"{cls.name!r} accepts: {', '.join(fields)}",
        ) from None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            "name",
            name,
            "must be 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
            hint="pass name=... or let it default to the model's name",
        )
    return name


def default_name(model_name: str) -> str:
    """A deployment name from a model name: lowercase, runs of other characters as '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")[:63].strip("-")
    return slug or "model"


# -- records --------------------------------------------------------------------------------


def _client() -> Any:
    return get_store().client


def _records_of(version: ModelVersion) -> list[Deployment]:
    found = []
    for key, value in (version.tags or {}).items():
        if key.startswith(TAG_PREFIX):
            try:
                found.append(Deployment.from_json(value))
            except (ValueError, TypeError, KeyError) as exc:
                logger.warning("mltrack: ignoring the unreadable deployment record %s on %s: %s", key, version, exc)
    return found


def _all_records() -> list[Deployment]:
    versions = _client().search_model_versions(f"tags.`{MARKER_TAG}` = 'true'")
    return [record for version in versions for record in _records_of(version)]


def save_record(deployment: Deployment) -> None:
    """Write ``deployment``'s record on its model version (and the marker)."""
    text = deployment.to_json()
    if len(text) > MAX_RECORD_CHARS:
        raise DeploymentError(
            f"deployment {deployment.id}'s record is {len(text)} characters; MLflow tags hold {MAX_RECORD_CHARS}",
            hint="shorten the deployment config (large values belong in the provider's settings or a file)",
        )
    client = _client()
    version = str(deployment.model_version)
    client.set_model_version_tag(deployment.model_name, version, deployment.tag_key, text)
    client.set_model_version_tag(deployment.model_name, version, MARKER_TAG, "true")


def list_deployments(
    provider: str | None = None, model_name: str | None = None, *, include_history: bool = False
) -> list[Deployment]:
    """Recorded deployments, newest first. Without ``include_history`` only the current record
    of each id (not the ones replaced by a later deployment of the same id)."""
    records = [
        r
        for r in _all_records()
        if (provider is None or r.provider == provider) and (model_name is None or r.model_name == model_name)
    ]
    records.sort(key=lambda r: (r.updated_at, r.created_at), reverse=True)
    if include_history:
        return records
    current: dict[str, Deployment] = {}
    for record in records:  # newest first
        best = current.get(record.id)
        if best is None or (_is_replaced(best) and not _is_replaced(record)):
            current[record.id] = record
    return sorted(current.values(), key=lambda r: r.updated_at, reverse=True)


def _is_replaced(record: Deployment) -> bool:
    return record.state is DeploymentState.DELETED and record.message.startswith("replaced by")


def get_deployment(deployment_id: str) -> Deployment:
    """The current record of ``<provider>/<name>`` (``name`` alone when only one provider has it)."""
    records = list_deployments()
    if "/" in deployment_id:
        matches = [r for r in records if r.id == deployment_id]
    else:
        matches = [r for r in records if r.name == deployment_id]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DeploymentNotFoundError(
            f"{deployment_id!r} names several deployments: {', '.join(r.id for r in matches)}",
            hint="use the full id <provider>/<name>",
        )
    shown = ", ".join(r.id for r in records) or "(none)"
    raise DeploymentNotFoundError(f"no deployment {deployment_id!r}", hint=f"deployments: {shown}")


# -- one deploy or delete of an id at a time -------------------------------------------------


def lock_path(provider: str, name: str) -> Path:
    """The lock file of ``<provider>/<name>`` (next to the local provider's own files)."""
    from mltrack.config.settings import get_settings

    return Path(get_settings().data_dir) / "deployments" / provider / f"{name}.lock"


@contextmanager
def deployment_lock(provider: str, name: str, *, timeout: float, action: str) -> Iterator[None]:
    """Hold the inter-process lock of ``<provider>/<name>``, waiting up to ``timeout`` seconds.

    ``flock`` rather than a lock file that exists or not: the kernel drops it when its
    holder dies, so a killed ``mltrack deploy`` never leaves the name locked. The file
    itself stays (removing it would let two processes lock two different files). It
    names the holder, for the error of the one that gives up waiting.
    """
    with _locked(provider, name, timeout=timeout, action=action) as held:
        if not held:
            path = lock_path(provider, name)
            raise DeploymentError(
                f"another deploy or delete of {provider}/{name} ({_lock_holder(path)}) still runs after "
                f"{timeout:g} s of waiting for it; nothing was changed",
                hint=f"let it finish (`mltrack deployments status {provider}/{name} --wait`) "
                f"and try again, or wait longer with --timeout; lock file: {path}",
            )
        yield


@contextmanager
def _locked(provider: str, name: str, *, timeout: float, action: str) -> Iterator[bool]:
    """The lock of ``<provider>/<name>`` if it comes within ``timeout`` seconds: yields whether it did."""
    if sys.platform == "win32":  # no flock; the local provider (process groups) is POSIX-only anyway
        yield True
        return
    path = lock_path(provider, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(LOCK_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{action} by pid {os.getpid()} since {_now()}\n".encode(), 0)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _lock_holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "holder unknown"


# -- deploying ------------------------------------------------------------------------------


class LogProgress:
    """Progress as log lines on ``mltrack.deploy`` (library calls; the CLI shows rich progress)."""

    def step(self, message: str) -> None:
        logger.info("mltrack deploy: %s", message)

    def advance(self, done: float, total: float | None = None) -> None:
        pass


def resolve_model_ref(model_name: str, version: int | str = "latest") -> ModelRef:
    """The registered model version a deployment would serve (an unknown one raises, listing what exists)."""
    from mltrack.models.registry import resolve_version

    resolved = resolve_version(model_name, version)
    alias = None
    if isinstance(version, str) and version != "latest" and not (version.isascii() and version.isdigit()):
        alias = version.lstrip("@")
    flavour = None
    try:
        from mlflow.models import get_model_info

        info = get_model_info(str(resolved.source))
        flavour = (info.metadata or {}).get("mltrack_flavour") or next(iter(info.flavors), None)
    except Exception:  # a source MLflow cannot read now: the provider finds out when it downloads
        flavour = None
    return ModelRef(
        name=resolved.name,
        version=int(resolved.version),
        alias=alias,
        source=str(resolved.source),
        run_id=resolved.run_id,
        flavour=flavour,
        tracking_uri=get_store().tracking_uri,
    )


def plan_deployment(
    model_name: str,
    version: int | str = "latest",
    provider: str = "local",
    config: dict[str, Any] | BaseModel | None = None,
    *,
    name: str | None = None,
    check_credentials: bool = False,
) -> DeployPlan[Any]:
    """What ``deploy`` with these arguments would do; creates and records nothing.

    A plan needs no credentials (so ``mltrack deploy --plan`` works before they are set up);
    ``check_credentials=True`` (what ``deploy`` does) also raises ``CredentialsMissingError``.
    """
    instance = get_provider(provider)
    return _plan(instance, model_name, version, config, name=name, check_credentials=check_credentials)


def _plan(
    instance: DeployProvider[Any],
    model_name: str,
    version: int | str,
    config: dict[str, Any] | BaseModel | None,
    *,
    name: str | None,
    check_credentials: bool,
) -> DeployPlan[Any]:
    validated = validate_config(type(instance), config)
    deployment_name = _check_name(name if name is not None else default_name(model_name))
    model = resolve_model_ref(model_name, version)
    if check_credentials:
        instance.check_credentials()
    previous = _current(f"{instance.name}/{deployment_name}")
    return instance.plan(model, deployment_name, validated, replaces=previous)


def _current(deployment_id: str) -> Deployment | None:
    try:
        record = get_deployment(deployment_id)
    except DeploymentNotFoundError:
        return None
    return None if record.state is DeploymentState.DELETED else record


def deploy(
    model_name: str,
    version: int | str = "latest",
    provider: str = "local",
    config: dict[str, Any] | BaseModel | None = None,
    *,
    name: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> Deployment:
    """Deploy a registered model version with ``provider``; returns the recorded ``Deployment``.

    ``version`` is an int, ``"latest"`` or an alias (``"@champion"``). ``config`` is the
    provider's ``DeploymentConfig`` (a dict): every invalid field is reported before anything
    is created. With ``wait`` (the default) the call returns once the deployment is ready and
    raises ``DeploymentError`` if it failed, or ``DeployTimeoutError`` after ``timeout`` seconds
    (default: the provider's ``default_timeout_s``), leaving the deployment to finish.

    While another deploy or delete of the same id runs on this machine, the call waits for
    it (up to ``timeout`` too) and then replaces what it left, as a redeploy does.
    """
    instance = get_provider(provider)  # the one provider object of this deploy
    validate_config(type(instance), config)  # refused at once, not after waiting for the lock
    deployment_name = _check_name(name if name is not None else default_name(model_name))
    lock_timeout = timeout if timeout is not None else instance.default_timeout_s
    progress = progress or LogProgress()
    with deployment_lock(provider, deployment_name, timeout=lock_timeout, action="deploy"):
        # planned under the lock: `replaces` is whatever the previous holder recorded
        plan = _plan(instance, model_name, version, config, name=deployment_name, check_credentials=True)
        record = _deploy_and_record(instance, plan, progress)
    if wait and not record.state.is_final:
        limit = timeout if timeout is not None else plan.wait_timeout_s
        if limit is None:
            limit = instance.default_timeout_s
        record = wait_until_final(record, timeout=limit, progress=progress, provider=instance)
    if wait and record.state is DeploymentState.FAILED:
        raise DeploymentError(
            f"deployment {record.id} failed: {record.message}", hint=f"see `mltrack deployments logs {record.id}`"
        )
    return record


def _deploy_and_record(instance: DeployProvider[Any], plan: DeployPlan[Any], progress: Progress) -> Deployment:
    record = Deployment(
        name=plan.name,
        provider=plan.provider,
        model_name=plan.model.name,
        model_version=plan.model.version,
        alias=plan.model.alias,
        config=plan.config.model_dump(mode="json"),
        url=plan.url,
        message="deploying",
    )
    save_record(record)  # first: a deployment that fails half-way is still found and deletable
    try:
        status = instance.deploy(plan, progress)
    except BaseException as exc:
        message = exc.message if isinstance(exc, DeploymentError) else f"{type(exc).__name__}: {exc}"
        save_record(replace(record, state=DeploymentState.FAILED, message=message.splitlines()[0], updated_at=_now()))
        raise
    record = record.with_status(status)
    save_record(record)
    if plan.replaces is not None and plan.replaces.model_version != record.model_version:
        save_record(
            replace(
                plan.replaces,
                state=DeploymentState.DELETED,
                message=f"replaced by v{record.model_version}",
                updated_at=_now(),
            )
        )
    return record


def wait_until_final(
    deployment: Deployment,
    *,
    timeout: float,
    progress: Progress | None = None,
    provider: DeployProvider[Any] | None = None,
) -> Deployment:
    """Poll the provider until the deployment is no longer pending; raise ``DeployTimeoutError`` after ``timeout``.

    ``provider``: the deployment's provider object where the caller has it already."""
    instance = provider if provider is not None else get_provider(deployment.provider)
    poll = instance.poll_interval_s
    start = time.monotonic()
    record = deployment
    if progress is not None:
        progress.step(f"waiting for {deployment.id} to become ready")
    while True:
        status = instance.status(record)
        if status.state is not record.state or status.url != record.url or status.message != record.message:
            record = record.with_status(status)
            save_record(record)
        if record.state.is_final:
            return record
        waited = time.monotonic() - start
        if progress is not None:
            progress.advance(waited, timeout)
        if waited >= timeout:
            raise DeployTimeoutError(
                f"deployment {record.id} is still {record.state} after {timeout:.0f} s "
                f"({record.message or 'no message'})",
                hint=f"it goes on in the background: `mltrack deployments status {record.id}`",
            )
        time.sleep(min(poll, max(0.05, timeout - waited)))


def refresh(deployment: Deployment) -> Deployment:
    """``deployment`` with its live status from its provider; the record is updated if it changed."""
    if deployment.state is DeploymentState.DELETED:
        return deployment
    status = get_provider(deployment.provider).status(deployment)
    if status.state is deployment.state and status.url == deployment.url and status.message == deployment.message:
        return deployment
    updated = deployment.with_status(status)
    # Saved only if no deploy or delete of the id runs now or ran since `deployment` was read:
    # their record is newer, and this one over it would name a server they stopped.
    with _locked(deployment.provider, deployment.name, timeout=0, action="status") as held:
        if held and _stored_text(deployment) == deployment.to_json():
            save_record(updated)
    return updated


def _stored_text(deployment: Deployment) -> str | None:
    version = _client().get_model_version(deployment.model_name, str(deployment.model_version))
    text: str | None = (version.tags or {}).get(deployment.tag_key)
    return text


def delete_deployment(
    deployment_id: str, *, progress: Progress | None = None, timeout: float | None = None
) -> Deployment:
    """Remove a deployment; idempotent (deleting a deleted one returns its record).

    A deploy of the same id running on this machine is waited for (up to ``timeout``
    seconds, default the provider's ``default_timeout_s``); what it left is then deleted.
    """
    record = get_deployment(deployment_id)
    if record.state is DeploymentState.DELETED:
        return record
    instance = get_provider(record.provider)
    lock_timeout = timeout if timeout is not None else instance.default_timeout_s
    with deployment_lock(record.provider, record.name, timeout=lock_timeout, action="delete"):
        record = get_deployment(record.id)  # the deploy we waited for may have replaced it
        if record.state is DeploymentState.DELETED:
            return record
        status = instance.delete(record, progress or LogProgress())
        if status.state is not DeploymentState.DELETED:
            raise DeploymentError(f"deployment {record.id} is still {status.state} after delete: {status.message}")
        updated = record.with_status(status)
        save_record(updated)
    return updated


# -- requests -------------------------------------------------------------------------------

_PROTOCOL_KEYS = {"dataframe_split", "dataframe_records", "instances", "inputs"}


def to_scoring_payload(data: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``data`` in MLflow's scoring protocol: a DataFrame as ``dataframe_split``, a list of
    dicts as ``dataframe_records``, a dict of columns as ``dataframe_split``, an array or list
    as ``inputs``; a dict that already is a payload passes through."""
    payload: dict[str, Any]
    if isinstance(data, dict) and _PROTOCOL_KEYS & set(data):
        payload = dict(data)
    elif type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):
        split = json.loads(data.to_json(orient="split", index=False, date_format="iso"))
        payload = {"dataframe_split": split}
    elif isinstance(data, dict):
        columns = list(data)
        lengths = {len(v) if isinstance(v, (list, tuple)) else 1 for v in data.values()}
        if len(lengths) > 1:
            raise InvalidInputError("data", data, "has columns of different lengths")
        rows = max(lengths, default=0)
        values = [v if isinstance(v, (list, tuple)) else [v] for v in data.values()]
        payload = {
            "dataframe_split": {
                "columns": columns,
                "data": [list(r) for r in zip(*values, strict=True)] if rows else [],
            }
        }
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        payload = {"dataframe_records": data}
    elif hasattr(data, "tolist"):
        payload = {"inputs": data.tolist()}
    elif isinstance(data, (list, tuple, str)):
        payload = {"inputs": data}
    else:
        raise InvalidInputError(
            "data", data, "cannot be sent to a deployment", hint="pass a DataFrame, dict, list or numpy array"
        )
    if params:
        payload["params"] = params
    return payload
