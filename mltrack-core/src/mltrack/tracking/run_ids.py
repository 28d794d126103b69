"""Run ids as people type them: the 8-character short form, and a unique prefix resolved to the full id."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mltrack.errors import MLTrackError, RunNotFoundError
from mltrack.storage.store import MlflowStore, get_store
from mltrack.tracking.experiments import store_errors

if TYPE_CHECKING:
    from mlflow.entities import Run

# mlflow is imported inside functions, not by `import mltrack` (benchmarks/import_time.py).

SHORT_ID_LENGTH = 8
"""Characters of a run id shown in tables (the UI shows as many)."""

MIN_PREFIX_LENGTH = 4
FULL_ID_LENGTH = 32
# MLflow's run ids are 32 lowercase hex digits; only such a prefix is searched with LIKE, where any
# other character could be a wildcard (``_``, ``%``) or end the quoted filter value.
_HEX_PREFIX = re.compile(r"[0-9a-f]+")
_CANDIDATES_SHOWN = 5


def short_run_id(run_id: str) -> str:
    """The first 8 characters of ``run_id``, the form tables and the UI show."""
    return run_id[:SHORT_ID_LENGTH]


def resolve_run_id(text: str, *, tracking_uri: str | None = None) -> str:
    """The full id of the one run whose id is ``text`` or starts with it (deleted runs included).

    A full id (or an offline run's id) is returned as given, for the caller's own lookup to check.
    A shorter prefix of at least 4 hex digits is searched with ``attributes.run_id LIKE 'prefix%'``
    (one query on a database, one request to a tracking server); no match raises
    ``RunNotFoundError`` and several raise ``MLTrackError`` listing them.
    """
    text = text.strip()
    prefix = text.lower()
    if len(text) >= FULL_ID_LENGTH or not _HEX_PREFIX.fullmatch(prefix):
        return text
    store = get_store(tracking_uri)
    if len(prefix) < MIN_PREFIX_LENGTH:
        raise RunNotFoundError(
            f"run id {text!r} is too short to find a run in {store.tracking_uri}",
            hint=f"give at least {MIN_PREFIX_LENGTH} characters of the id (`mltrack runs list` shows 8)",
        )
    matches = _runs_with_prefix(store, prefix, limit=_CANDIDATES_SHOWN + 1)
    if not matches:
        raise RunNotFoundError(
            f"no run id starts with {text!r} in {store.tracking_uri}",
            hint="list runs with `mltrack runs list` (deleted ones: `mltrack gc --dry-run`)",
        )
    if len(matches) > 1:
        shown = ", ".join(_describe(run, len(prefix)) for run in matches[:_CANDIDATES_SHOWN])
        more = ", ..." if len(matches) > _CANDIDATES_SHOWN else ""
        raise MLTrackError(
            f"run id {text!r} matches several runs: {shown}{more}",
            hint="give more characters of the id",
        )
    return str(matches[0].info.run_id)


def _runs_with_prefix(store: MlflowStore, prefix: str, *, limit: int) -> list[Run]:
    from mlflow.entities import ViewType

    with store_errors(store):
        experiment_ids: list[str] = []
        token: str | None = None
        while True:
            page = store.client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
            experiment_ids.extend(e.experiment_id for e in page)
            token = page.token
            if not token:
                break
        if not experiment_ids:
            return []
        return list(
            store.client.search_runs(
                experiment_ids,
                f"attributes.run_id LIKE '{prefix}%'",
                run_view_type=ViewType.ALL,
                max_results=limit,
            )
        )


def _describe(run: Run, typed: int) -> str:
    # enough characters to tell the candidates apart, at least the usual short form
    shown = run.info.run_id[: max(SHORT_ID_LENGTH, typed + 4)]
    deleted = ", deleted" if run.info.lifecycle_stage == "deleted" else ""
    return f"{shown} ({run.info.run_name or 'unnamed'}{deleted})"
