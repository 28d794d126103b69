"""Offline runs (``mode = "offline"``): recorded only in the local spool until ``mltrack sync``.

An offline run never contacts the tracking store. Its id is ``offline-<spool_id>``; its spool
(``<data_dir>/spool/offline-<spool_id>/<pid>-<ns>/``) holds what the store's ``create_run``
needs in its header, and everything logged to the run, as for any run. ``mltrack sync`` (or
the next process that starts a run on the same store) creates the run from it, with the
original start time, then sends the params, tags, metric points and artifacts and sets the
recorded status, exactly as it replays a crashed process's spool. The created run carries the
tag ``mltrack.spool_id``: a sync that is interrupted and run again finds that run instead of
creating a second one, and ``get_run("offline-...")`` finds it once it is synced.

Artifacts (``log_artifact(s)``, ``log_text``, ``log_dict``, ``log_model``) are copied into the
spool folder's ``artifacts/`` at the call. Whatever else needs the store (reading the run back,
registering a model, resuming the run) raises an ``MLTrackError`` saying the run is offline.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard, cast

from mltrack.errors import MLTrackError, RunNotFoundError, SpoolWriteError
from mltrack.storage.spool import SPOOL_ID_TAG
from mltrack.storage.store import MlflowStore

if TYPE_CHECKING:
    from mlflow.entities import FileInfo, Run
    from mlflow.tracking import MlflowClient

# mlflow is imported inside functions: an offline run never touches the store (benchmarks/import_time.py).

OFFLINE_PREFIX = "offline-"
ARTIFACTS = "artifacts"  # the folder, inside an offline run's spool, that holds its artifacts
SYNC_HINT = "run `mltrack sync` once the tracking server is reachable; it prints the id the run gets there"


def offline_run_id(spool_id: str) -> str:
    return OFFLINE_PREFIX + spool_id


def is_offline_run_id(run_id: Any) -> TypeGuard[str]:
    return isinstance(run_id, str) and run_id.startswith(OFFLINE_PREFIX)


def spool_id_of(run_id: str) -> str:
    return run_id[len(OFFLINE_PREFIX) :]


def offline_error(run_id: str, tracking_uri: str, doing: str) -> RunNotFoundError:
    """The error for ``doing`` something that needs the store with a run that is not there yet."""
    return RunNotFoundError(
        f"run {run_id} is offline: {doing} needs the tracking store, and the run is only in the local "
        f"spool until it is synced to {tracking_uri}",
        hint=SYNC_HINT,
    )


def check_registrable(model_uri: str) -> None:
    """Refuse, before the registry is contacted, to register a model of a run not in the store yet."""
    match = re.match(r"^runs:/(offline-[^/]+)/(.+)$", model_uri)
    if match is None:
        return
    run_id, path = match.groups()
    raise MLTrackError(
        f"model {path!r} is saved in offline run {run_id}, which is not in the tracking store yet: "
        "registering a model needs the store",
        hint=f"run `mltrack sync`, then register 'runs:/<the run id it reports>/{path}'",
    )


class _OfflineArtifacts:
    """The part of ``MlflowClient`` that logging calls use for artifacts, writing into the
    offline run's spool folder. Every other client method raises the offline error."""

    def __init__(self, folder: Path, run_id: str, tracking_uri: str) -> None:
        self.folder = folder
        self.run_id = run_id
        self.tracking_uri = tracking_uri

    def _target(self, artifact_path: str | None) -> Path:
        # artifact paths were checked at the call: plain relative paths, no '..'
        return self.folder / artifact_path if artifact_path else self.folder

    def _copy(self, copy: Callable[[], object]) -> None:
        try:
            copy()
        except OSError as exc:
            raise SpoolWriteError(
                f"could not copy the artifact into the offline run's folder {self.folder} "
                f"({exc.strerror or exc}): it was not saved",
                errno=exc.errno,
                hint="check that the folder is writable and has room (or point MLTRACK_DATA_DIR elsewhere)",
            ) from None

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        target = self._target(artifact_path)

        def copy() -> None:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local_path, target / Path(local_path).name)

        self._copy(copy)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        target = self._target(artifact_path)
        self._copy(lambda: shutil.copytree(local_dir, target, dirs_exist_ok=True))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        from mlflow.entities import FileInfo

        where = self._target(path)
        if not where.is_dir():
            return []
        return [
            FileInfo(
                child.relative_to(self.folder).as_posix(),
                child.is_dir(),
                None if child.is_dir() else child.stat().st_size,
            )
            for child in sorted(where.iterdir())
        ]

    def __getattr__(self, name: str) -> Callable[..., NoReturn]:
        if name.startswith("_"):
            raise AttributeError(name)

        def needs_the_store(*args: Any, **kwargs: Any) -> NoReturn:
            raise offline_error(self.run_id, self.tracking_uri, f"MlflowClient.{name}")

        return needs_the_store


class OfflineStore(MlflowStore):
    """The store of an offline run: artifacts go into its spool folder, nothing reaches the
    tracking store (``tracking_uri`` names where ``mltrack sync`` will create the run)."""

    def __init__(self, tracking_uri: str, folder: Path, run_id: str) -> None:
        super().__init__(tracking_uri)
        self.folder = folder
        self.run_id = run_id

    @cached_property
    def client(self) -> MlflowClient:
        # Code written for a run's store (log_artifact, log_model, plugins) calls MlflowClient
        # methods on it: the artifact ones work offline, the others raise the offline error.
        return cast("MlflowClient", _OfflineArtifacts(self.folder, self.run_id, self.tracking_uri))


def find_synced_run(
    client: MlflowClient, spool_id: str, experiment_ids: list[str] | None = None, *, deleted: bool = False
) -> Run | None:
    """The run that ``mltrack sync`` created from offline spool ``spool_id``, if any.

    Searches ``experiment_ids`` (default: every experiment); ``deleted`` includes deleted runs
    and experiments.
    """
    from mlflow.entities import ViewType

    view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
    if experiment_ids is None:
        experiment_ids = []
        token = None
        while True:
            page = client.search_experiments(view_type=view, max_results=1000, page_token=token)
            experiment_ids.extend(e.experiment_id for e in page)
            token = page.token
            if not token:
                break
    # a spool id is hex: nothing in it needs escaping in the filter
    query = f"tags.`{SPOOL_ID_TAG}` = '{spool_id}'"
    for start in range(0, len(experiment_ids), 100):
        found = client.search_runs(
            experiment_ids[start : start + 100], filter_string=query, run_view_type=view, max_results=1
        )
        if found:
            return found[0]
    return None
