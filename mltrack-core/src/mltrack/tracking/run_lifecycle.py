"""Deleting runs: MLflow's soft delete and restore, and permanent removal of deleted runs (gc).

Permanent removal uses the same store methods as ``mlflow gc`` (``_get_deleted_runs`` and
``_hard_delete_run`` of MLflow's database and file stores, and the artifact repository's
``delete_artifacts``), so what is removed is exactly what ``mlflow gc`` would remove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrack.errors import InvalidInputError, MLTrackError
from mltrack.storage.store import MlflowStore, get_store
from mltrack.tracking.experiments import store_errors
from mltrack.tracking.run_ids import resolve_run_id
from mltrack.tracking.runs import get_run

if TYPE_CHECKING:
    from mlflow.entities import Run

# mlflow is imported inside functions, not by `import mltrack` (benchmarks/import_time.py).

DELETED = "deleted"
_DURATION = re.compile(
    r"(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?"
)
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}


@dataclass(frozen=True, slots=True)
class RunChange:
    """What deleting, restoring or removing one run did (``changed`` is False when it already was so)."""

    run_id: str
    name: str | None
    experiment: str
    changed: bool
    note: str = ""


def parse_age(text: str) -> int:
    """Milliseconds in an age such as ``30d``, ``12h``, ``1d12h`` or ``90m`` (``mlflow gc --older-than``'s form)."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise InvalidInputError(
            "--older-than", text, "is not an age", hint="write days, hours, minutes or seconds: 30d, 12h, 1d12h, 90m"
        )
    return int(sum(float(value) * _UNIT_MS[unit] for unit, value in match.groupdict().items() if value))


def experiment_names(store: MlflowStore, experiment_ids: set[str]) -> dict[str, str]:
    """Experiment id -> name for ``experiment_ids`` (an experiment that cannot be read keeps its id)."""
    names: dict[str, str] = {}
    for experiment_id in experiment_ids:
        try:
            names[experiment_id] = store.client.get_experiment(experiment_id).name
        except Exception:  # a name is a nicety: the id still says which experiment
            names[experiment_id] = experiment_id
    return names


def _change(run: Run, store: MlflowStore, changed: bool, note: str = "") -> RunChange:
    experiment = experiment_names(store, {run.info.experiment_id})[run.info.experiment_id]
    return RunChange(run.info.run_id, run.info.run_name, experiment, changed, note)


def delete_run(run: str, *, tracking_uri: str | None = None) -> RunChange:
    """Soft-delete run ``run`` (id or unique prefix): hidden from listings until restored or removed by gc."""
    store = get_store(tracking_uri)
    found = get_run(resolve_run_id(run, tracking_uri=tracking_uri))
    if found.info.lifecycle_stage == DELETED:
        return _change(found, store, False, "already deleted")
    with store_errors(store):
        store.client.delete_run(found.info.run_id)
    note = "it was still RUNNING" if found.info.status == "RUNNING" else ""
    return _change(found, store, True, note)


def restore_run(run: str, *, tracking_uri: str | None = None) -> RunChange:
    """Restore soft-deleted run ``run`` (id or unique prefix)."""
    store = get_store(tracking_uri)
    found = get_run(resolve_run_id(run, tracking_uri=tracking_uri))
    if found.info.lifecycle_stage != DELETED:
        return _change(found, store, False, "not deleted")
    with store_errors(store):
        store.client.restore_run(found.info.run_id)
    return _change(found, store, True)


class Collector:
    """Finds deleted runs and removes them for good, through MLflow's own gc machinery.

    ``backend_store_uri`` is the database to remove them from; by default the tracking URI's,
    which must then be a database (a tracking server offers no permanent delete).
    """

    def __init__(self, backend_store_uri: str | None = None, *, tracking_uri: str | None = None) -> None:
        self.store = get_store(tracking_uri)
        uri = backend_store_uri or self.store.tracking_uri
        if uri.startswith(("http://", "https://", "databricks")):
            raise MLTrackError(
                f"runs cannot be removed for good through the tracking server at {uri}: "
                "MLflow's REST API has no permanent delete",
                hint="pass --backend-store-uri with the server's database, as given to `mlflow server "
                "--backend-store-uri` (e.g. postgresql+psycopg2://user:password@host/mlflow)",
            )
        self.backend_uri = uri
        from mlflow.tracking._tracking_service.utils import _get_store

        with store_errors(self.store):
            # what `mlflow gc` opens for --backend-store-uri
            self.backend: Any = _get_store(uri)  # type: ignore[no-untyped-call]
        if not hasattr(self.backend, "_hard_delete_run"):
            raise MLTrackError(
                f"the store at {uri} cannot remove runs for good",
                hint="use a database store (sqlite, PostgreSQL, MySQL)",
            )

    def deleted(self, *, older_than_ms: int = 0, runs: list[str] | None = None) -> list[Run]:
        """The deleted runs to remove: ``runs`` (ids or prefixes, each must be deleted and old enough),
        or every run deleted more than ``older_than_ms`` ago."""
        with store_errors(self.store):
            old_enough = set(self.backend._get_deleted_runs(older_than=older_than_ms))
        if runs is None:
            ids = sorted(old_enough)
        else:
            ids = [resolve_run_id(r, tracking_uri=self.store.tracking_uri) for r in runs]
        found = []
        for run_id in dict.fromkeys(ids):
            with store_errors(self.store):
                run = self.backend.get_run(run_id)
            short = run_id[:8]
            if run.info.lifecycle_stage != DELETED:
                raise MLTrackError(
                    f"run {short} ({run.info.run_name}) is not deleted; gc removes only deleted runs",
                    hint=f"delete it first: mltrack runs delete {short}",
                )
            if run_id not in old_enough:
                raise MLTrackError(
                    f"run {short} ({run.info.run_name}) was deleted too recently for --older-than",
                    hint="leave out --older-than to remove it now",
                )
            found.append(run)
        return found

    def remove(self, run: Run) -> RunChange:
        """Remove ``run``'s artifacts, then the run itself (metadata, params, metrics, tags)."""
        from mlflow.exceptions import InvalidUrlException
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        note = ""
        try:
            repository = get_artifact_repository(run.info.artifact_uri, tracking_uri=self.store.tracking_uri)
            repository.delete_artifacts()  # type: ignore[no-untyped-call]
        except InvalidUrlException:
            # as `mlflow gc`: an artifact location that cannot be resolved does not keep the run
            note = f"artifacts left at {run.info.artifact_uri} (location not understood)"
        except Exception as exc:
            # the run is kept so its artifact location is not lost; another gc can retry
            return RunChange(
                run.info.run_id,
                run.info.run_name,
                self.experiment_of(run),
                False,
                f"kept: artifacts not removed: {exc}",
            )
        with store_errors(self.store):
            self.backend._hard_delete_run(run.info.run_id)
        return RunChange(run.info.run_id, run.info.run_name, self.experiment_of(run), True, note)

    def experiment_of(self, run: Run) -> str:
        """The name of the experiment of ``run`` (its id if it cannot be read)."""
        try:
            return str(self.backend.get_experiment(run.info.experiment_id).name)
        except Exception:  # a name is a nicety: the id still says which experiment
            return str(run.info.experiment_id)
