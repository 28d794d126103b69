"""Experiments: create, look up, list, and choose the default for new runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mltrack import process_state
from mltrack.errors import ExperimentNotFoundError, InvalidInputError, MLTrackError, StoreError
from mltrack.storage.store import MlflowStore, get_store

if TYPE_CHECKING:
    from mlflow.entities import Experiment

# mlflow and the settings (pydantic) are imported inside functions, not by `import mltrack`
# (benchmarks/import_time.py).

DEFAULT_EXPERIMENT_ID = "0"
_default_name: str | None = None
_lock = threading.Lock()


@contextmanager
def store_errors(store: MlflowStore) -> Iterator[None]:
    """Turn MLflow and connection failures into one-line MLTrack errors."""
    try:
        yield
    except MLTrackError:
        raise
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            raise StoreError(
                f"the MLflow store at {store.tracking_uri} refused the request: {exc.message.splitlines()[0]}"
            ) from exc
        if isinstance(exc, (ConnectionError, OSError)) or "Connection" in type(exc).__name__:
            raise StoreError(
                f"cannot reach the MLflow store at {store.tracking_uri}: {exc}",
                hint="start the tracking server or fix MLTRACK_TRACKING_URI",
            ) from exc
        raise


def _error_code(exc: BaseException) -> str | None:
    return getattr(exc, "error_code", None)


def _existing_names(store: MlflowStore, limit: int = 10) -> str:
    try:
        experiments = store.client.search_experiments(max_results=limit)
    except Exception:
        return "(could not list experiments)"
    return ", ".join(f"{e.name!r} (id {e.experiment_id})" for e in experiments) or "(none)"


def get_experiment(experiment: str, *, tracking_uri: str | None = None) -> Experiment:
    """An experiment by id or name; raises ``ExperimentNotFoundError`` listing what exists."""
    store = get_store(tracking_uri)
    from mlflow.exceptions import MlflowException

    with store_errors(store):
        found = store.client.get_experiment_by_name(experiment)
        if found is None and experiment.isascii() and experiment.isdigit():
            try:
                found = store.client.get_experiment(experiment)
            except MlflowException as exc:
                if _error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                    raise
    if found is None:
        raise ExperimentNotFoundError(
            f"experiment {experiment!r} does not exist in {store.tracking_uri}",
            hint=f"existing experiments: {_existing_names(store)}",
        )
    return found


def get_experiment_by_id(experiment_id: str, store: MlflowStore) -> Experiment:
    from mlflow.exceptions import MlflowException

    try:
        with store_errors(store):
            return store.client.get_experiment(str(experiment_id))
    except StoreError as exc:
        cause = exc.__cause__
        if isinstance(cause, MlflowException) and _error_code(cause) in {
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
        }:
            raise ExperimentNotFoundError(
                f"experiment id {experiment_id!r} does not exist in {store.tracking_uri}",
                hint=f"existing experiments: {_existing_names(store)}",
            ) from None
        raise


def create_experiment(
    name: str,
    *,
    artifact_location: str | None = None,
    tags: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Create an experiment and return its id; an existing name is an error."""
    store = get_store(tracking_uri)
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("experiment name", name, "must be a non-empty string")
    with store_errors(store):
        if store.client.get_experiment_by_name(name) is not None:
            raise MLTrackError(f"experiment {name!r} already exists", hint="use get_experiment or set_experiment")
        return store.client.create_experiment(
            name, artifact_location=artifact_location, tags={k: str(v) for k, v in (tags or {}).items()}
        )


def get_or_create_experiment_id(name: str, store: MlflowStore) -> str:
    with store_errors(store):
        found = store.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise ExperimentNotFoundError(
                    f"experiment {name!r} is deleted",
                    hint=f"restore it (mlflow experiments restore --experiment-id {found.experiment_id}) "
                    "or use another name",
                )
            return str(found.experiment_id)
        from mlflow.exceptions import MlflowException

        try:
            return str(store.client.create_experiment(name))
        except MlflowException:  # created concurrently by another process
            again = store.client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)


def set_experiment(name: str, *, tracking_uri: str | None = None) -> Experiment:
    """Use experiment ``name`` (created if missing) for runs that name none."""
    global _default_name
    store = get_store(tracking_uri)
    experiment_id = get_or_create_experiment_id(name, store)
    with _lock:
        _default_name = name
    return get_experiment_by_id(experiment_id, store)


def list_experiments(*, tracking_uri: str | None = None) -> list[Experiment]:
    """All active experiments in the store."""
    store = get_store(tracking_uri)
    with store_errors(store):
        return list(store.client.search_experiments())


def resolve_experiment_id(store: MlflowStore, experiment: str | None = None, experiment_id: str | None = None) -> str:
    """The experiment a new run goes to: explicit id > name > set_experiment > config > Default."""
    if experiment_id is not None:
        return str(get_experiment_by_id(str(experiment_id), store).experiment_id)
    if experiment is None:
        from mltrack.config.settings import get_settings

        experiment = _default_name or get_settings().experiment
    if experiment is None:
        return DEFAULT_EXPERIMENT_ID
    if not isinstance(experiment, str) or not experiment.strip():
        raise InvalidInputError("experiment", experiment, "must be a non-empty experiment name")
    return get_or_create_experiment_id(experiment, store)


def reset_default_experiment() -> None:
    global _default_name
    with _lock:
        _default_name = None


def _renew_lock() -> None:
    global _lock
    _lock = threading.Lock()


process_state.register("default experiment", reset=reset_default_experiment, after_fork=_renew_lock)
