"""The runs table: one page of runs with their params, latest metrics and chosen tags.

On a SQL store the page is read with a handful of queries: MLflow's own filter and
order-by translation selects the page's run ids, then params, latest metrics and tags are
read for those runs only. Elsewhere (an MLflow tracking server) ``MlflowClient.search_runs``
fetches the page; both return the same document.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mltrack import InvalidInputError
from mltrack.extend import MlflowStore
from mltrack_ui.pagination import check_server_token, offset_from, offset_token
from mltrack_ui.query_params import INT64_MAX, is_id, is_int64
from mltrack_ui.sql_store import sqlalchemy_store

MAX_PAGE_SIZE = 1000
MAX_COLUMN_KEYS = 1000
COLUMN_KINDS = ("params", "metrics", "tags")


@dataclass
class RunsQuery:
    """What the runs table asks for."""

    experiment_ids: list[str]
    filter_string: str = ""
    order_by: list[str] = field(default_factory=list)
    page_size: int = 100
    page_token: str | None = None
    # "params.lr", "metrics.loss", "tags.team"; None: every param and metric, no tags
    columns: list[str] | None = None
    include_deleted: bool = False

    def __post_init__(self) -> None:
        bad = [e for e in self.experiment_ids if not is_id(e)]
        if bad:
            raise InvalidInputError(
                "experiment_ids",
                bad,
                f"must be experiment ids (ASCII digits, at most {INT64_MAX}), not names",
                hint="take the ids from /api/experiments",
            )
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidInputError("page_size", self.page_size, f"must be between 1 and {MAX_PAGE_SIZE}")
        for column in self.columns or []:
            kind, _, key = column.partition(".")
            if kind not in COLUMN_KINDS or not key:
                raise InvalidInputError("columns", column, "must look like params.<key>, metrics.<key> or tags.<key>")
        _check_order_by(self.order_by)
        _check_filter_numbers(self.filter_string)

    def wanted(self, kind: str) -> set[str] | None:
        """The keys of ``kind`` to return; None for all of them."""
        if self.columns is None:
            return None if kind != "tags" else set()
        return {c.partition(".")[2] for c in self.columns if c.startswith(kind + ".")}


def _check_order_by(order_by: list[str]) -> None:
    """Refuse a field sorted on twice: MLflow raises an internal error for it (a 5xx)."""
    from mlflow.utils import search_utils

    SearchUtils: Any = search_utils.SearchUtils
    seen: set[tuple[str, str]] = set()
    for clause in order_by:
        key_type, key, _ascending = SearchUtils.parse_order_by_for_search_runs(clause)
        field = (key_type, SearchUtils.translate_key_alias(key))
        if field in seen:
            raise InvalidInputError(
                "order_by", clause, "sorts on a field an earlier order_by already sorts on", hint="name each field once"
            )
        seen.add(field)


def _check_filter_numbers(filter_string: str) -> None:
    """Refuse whole numbers in the filter that no 64-bit column holds (sqlite and PostgreSQL
    would fail the query rather than match nothing)."""
    from mlflow.utils import search_utils

    SearchUtils: Any = search_utils.SearchUtils
    for comparison in SearchUtils.parse_search_filter(filter_string):
        value = comparison.get("value")
        values = value if isinstance(value, (list, tuple)) else [value]
        for one in values:
            if isinstance(one, int) and not isinstance(one, bool) and not is_int64(one):
                raise InvalidInputError(
                    "filter",
                    filter_string,
                    f"compares {comparison.get('key')} with {one}, beyond the 64-bit range the store holds",
                    hint=f"use numbers between {-INT64_MAX - 1} and {INT64_MAX}",
                )


def metric_value(value: float | None, is_nan: bool = False) -> float | None:
    """A metric value JSON can carry: NaN and ±infinity are not JSON and are sent as null
    (the table shows an empty cell)."""
    if value is None or is_nan or not math.isfinite(value):
        return None
    return value


def search_runs_page(store: MlflowStore, query: RunsQuery) -> dict[str, Any]:
    """One page of the runs table (see the module docstring for the shape)."""
    backend = sqlalchemy_store(store)
    if backend is not None:
        return _page_from_sql(backend, query)
    return _page_from_client(store, query)


# -- SQL ------------------------------------------------------------------------------------


def _view_stages(include_deleted: bool) -> list[str]:
    return ["active", "deleted"] if include_deleted else ["active"]


def _page_from_sql(backend: Any, query: RunsQuery) -> dict[str, Any]:
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlLatestMetric, SqlParam, SqlRun, SqlTag

    from mltrack_ui.sql_store import search_clauses

    offset = offset_from(query.page_token)
    experiment_ids = [int(e) for e in query.experiment_ids]
    with backend.ManagedSessionMaker() as session:
        clauses = search_clauses(backend, session, query.filter_string, query.order_by)
        order_columns, order_clauses, order_joins = clauses.order_columns, clauses.order_clauses, clauses.order_joins
        attribute_filters, joined_filters = clauses.attribute_filters, clauses.joined_filters
        dataset_filters = clauses.dataset_filters
        # MLflow's clauses end with start_time DESC; PostgreSQL refuses SELECT DISTINCT with an
        # ORDER BY expression outside the select list, so it is selected too (one per run).
        stmt = sa.select(SqlRun.run_uuid, SqlRun.start_time, *order_columns)
        for joined in joined_filters:
            stmt = stmt.join(joined)
        for dataset in dataset_filters:
            stmt = stmt.join(dataset, SqlRun.run_uuid == dataset.c.destination_id)
        for join in order_joins:
            stmt = stmt.outerjoin(join)
        stmt = stmt.where(
            SqlRun.experiment_id.in_(experiment_ids),
            SqlRun.lifecycle_stage.in_(_view_stages(query.include_deleted)),
            *attribute_filters,
        ).distinct()
        total = session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
        page_ids = [
            row[0] for row in session.execute(stmt.order_by(*order_clauses).offset(offset).limit(query.page_size + 1))
        ]
        has_more = len(page_ids) > query.page_size
        page_ids = page_ids[: query.page_size]

        runs: dict[str, dict[str, Any]] = {}
        # the experiment's name comes with each row, so no page shows an id until names arrive
        page_runs = (
            sa.select(SqlRun.__table__, SqlExperiment.name.label("experiment_name"))
            .join(SqlExperiment, SqlExperiment.experiment_id == SqlRun.experiment_id)
            .where(SqlRun.run_uuid.in_(page_ids))
        )
        for run in session.execute(page_runs).mappings():
            runs[run["run_uuid"]] = {
                "run_id": run["run_uuid"],
                "run_name": run["name"],
                "experiment_id": str(run["experiment_id"]),
                "experiment_name": run["experiment_name"],
                "status": run["status"],
                "start_time": run["start_time"],
                "end_time": run["end_time"],
                "user_id": run["user_id"],
                "lifecycle_stage": run["lifecycle_stage"],
                "params": {},
                "metrics": {},
                "tags": {},
            }
        params_stmt = sa.select(SqlParam.run_uuid, SqlParam.key, SqlParam.value).where(SqlParam.run_uuid.in_(page_ids))
        metrics_stmt = sa.select(
            SqlLatestMetric.run_uuid, SqlLatestMetric.key, SqlLatestMetric.value, SqlLatestMetric.is_nan
        ).where(SqlLatestMetric.run_uuid.in_(page_ids))
        tags_stmt = sa.select(SqlTag.run_uuid, SqlTag.key, SqlTag.value).where(SqlTag.run_uuid.in_(page_ids))
        wanted_params, wanted_metrics, wanted_tags = (query.wanted(k) for k in COLUMN_KINDS)
        if wanted_params is not None:
            params_stmt = params_stmt.where(SqlParam.key.in_(sorted(wanted_params)))
        if wanted_metrics is not None:
            metrics_stmt = metrics_stmt.where(SqlLatestMetric.key.in_(sorted(wanted_metrics)))
        for run_id, key, value in session.execute(params_stmt):
            runs[run_id]["params"][key] = value
        for run_id, key, value, is_nan in session.execute(metrics_stmt):
            runs[run_id]["metrics"][key] = metric_value(value, bool(is_nan))
        if wanted_tags is None or wanted_tags:
            if wanted_tags is not None:
                tags_stmt = tags_stmt.where(SqlTag.key.in_(sorted(wanted_tags)))
            for run_id, key, value in session.execute(tags_stmt):
                runs[run_id]["tags"][key] = value
        columns = COLUMN_KEYS.keys(backend, session, experiment_ids, query.include_deleted)
    return {
        "runs": [runs[run_id] for run_id in page_ids if run_id in runs],
        "next_page_token": offset_token(offset + query.page_size) if has_more else None,
        "total": total,
        "columns": columns,
    }


# -- column keys -------------------------------------------------------------------------------
# Every key of 20,000 runs takes seconds to collect (a DISTINCT over each run's params, metrics
# and tags), far more than the page itself. The full set is kept per (store, experiments, view)
# and only the runs that can still bring a new key are read on each request: runs still RUNNING
# and runs started since the full set was read. Anything else (a tag set on a finished run, a run
# whose client clock lags, a deleted run) shows at the next full read, which runs in the
# background when the experiments' run count or latest start changed, or after 5 minutes.

# The whole read costs the machine 0.3-1 s at 20,000 runs (pages wait on it for the CPU): only
# keys added to finished runs (a tag set later) wait this long; new and running runs' keys do not.
COLUMN_KEYS_REFRESH_S = 300.0
# A busy experiment changes shape with every new run: read it whole at most this often.
COLUMN_KEYS_MIN_REFRESH_S = 5.0
LIVE_IDS = 500

ColumnKeysKey = tuple[str, tuple[int, ...], bool]


@dataclass
class _KnownKeys:
    keys: dict[str, set[str]]
    # (number of runs, latest start_time) of the experiments when ``keys`` was read
    shape: tuple[int, int | None]
    read_at: float
    refreshing: bool = False


class ColumnKeysCache:
    """The runs table's column keys per (store, experiments, include_deleted)."""

    def __init__(self, refresh_s: float = COLUMN_KEYS_REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self._known: dict[ColumnKeysKey, _KnownKeys] = {}
        self._lock = threading.Lock()

    def keys(
        self, backend: Any, session: Any, experiment_ids: list[int], include_deleted: bool
    ) -> dict[str, list[str]]:
        cache_key: ColumnKeysKey = (str(backend.engine.url), tuple(sorted(experiment_ids)), include_deleted)
        shape = _runs_shape(session, experiment_ids, include_deleted)
        with self._lock:
            known = self._known.get(cache_key)
        if known is None:
            known = _KnownKeys(_all_keys(session, experiment_ids, include_deleted), shape, time.monotonic())
            with self._lock:
                self._known[cache_key] = known
            return _sorted_keys(known.keys)
        recent = _recent_keys(session, experiment_ids, include_deleted, known.shape[1])
        age = time.monotonic() - known.read_at
        if age > self.refresh_s or (shape != known.shape and age > min(self.refresh_s, COLUMN_KEYS_MIN_REFRESH_S)):
            self._refresh(backend, cache_key, experiment_ids, include_deleted)
        return _sorted_keys({kind: known.keys[kind] | recent[kind] for kind in COLUMN_KINDS})

    def _refresh(
        self, backend: Any, cache_key: ColumnKeysKey, experiment_ids: list[int], include_deleted: bool
    ) -> None:
        with self._lock:
            known = self._known.get(cache_key)
            if known is None or known.refreshing:
                return
            known.refreshing = True

        def read() -> None:
            try:
                with backend.ManagedSessionMaker() as session:
                    # the shape first: a run added during the read makes the next request read again
                    shape = _runs_shape(session, experiment_ids, include_deleted)
                    started = time.monotonic()
                    keys = _all_keys(session, experiment_ids, include_deleted)
                with self._lock:
                    self._known[cache_key] = _KnownKeys(keys, shape, started)
            except Exception:  # the store went away: keep the old keys, read again next time
                with self._lock:
                    known.refreshing = False

        threading.Thread(target=read, name="mltrack-ui-column-keys", daemon=True).start()

    def clear(self) -> None:
        with self._lock:
            self._known.clear()


COLUMN_KEYS = ColumnKeysCache()


def _scope(experiment_ids: list[int], include_deleted: bool) -> list[Any]:
    from mlflow.store.tracking.dbmodels.models import SqlRun

    return [SqlRun.experiment_id.in_(experiment_ids), SqlRun.lifecycle_stage.in_(_view_stages(include_deleted))]


def _runs_shape(session: Any, experiment_ids: list[int], include_deleted: bool) -> tuple[int, int | None]:
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlRun

    stmt: Any = sa.select(sa.func.count(), sa.func.max(SqlRun.start_time)).where(
        *_scope(experiment_ids, include_deleted)
    )
    count, latest = session.execute(stmt).one()
    return int(count), latest


def _keys_of(session: Any, runs: Any) -> dict[str, set[str]]:
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlTag

    keys: dict[str, set[str]] = {}
    for kind, table in (("params", SqlParam), ("metrics", SqlLatestMetric), ("tags", SqlTag)):
        stmt: Any = sa.select(table.key).where(table.run_uuid.in_(runs)).distinct()
        keys[kind] = {row[0] for row in session.execute(stmt)}
    return keys


def _all_keys(session: Any, experiment_ids: list[int], include_deleted: bool) -> dict[str, set[str]]:
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlRun

    return _keys_of(session, sa.select(SqlRun.run_uuid).where(*_scope(experiment_ids, include_deleted)))


def _recent_keys(
    session: Any, experiment_ids: list[int], include_deleted: bool, since: int | None
) -> dict[str, set[str]]:
    """Keys of the runs that may have gained one since the full read: running or newer."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlRun

    live: Any = SqlRun.status == "RUNNING"
    if since is not None:
        started_since: Any = SqlRun.start_time >= since
        live = sa.or_(live, started_since)
    runs: Any = sa.select(SqlRun.run_uuid).where(*_scope(experiment_ids, include_deleted), live)
    # Usually none or a few: their ids once, rather than the runs table scanned per key kind.
    ids = [row[0] for row in session.execute(runs.limit(LIVE_IDS + 1))]
    if not ids:
        return {kind: set() for kind in COLUMN_KINDS}
    return _keys_of(session, ids if len(ids) <= LIVE_IDS else runs)


def _sorted_keys(keys: dict[str, set[str]]) -> dict[str, list[str]]:
    return {kind: sorted(keys[kind])[:MAX_COLUMN_KEYS] for kind in COLUMN_KINDS}


# -- MlflowClient -----------------------------------------------------------------------------


def run_document(run: Any, query: RunsQuery | None = None) -> dict[str, Any]:
    """The API's row for an MLflow ``Run`` entity (optionally limited to the query's columns)."""
    info, data = run.info, run.data

    def pick(kind: str, values: dict[str, Any]) -> dict[str, Any]:
        wanted = query.wanted(kind) if query is not None else None
        return dict(values) if wanted is None else {k: v for k, v in values.items() if k in wanted}

    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "user_id": info.user_id,
        "lifecycle_stage": info.lifecycle_stage,
        "params": pick("params", data.params),
        "metrics": {k: metric_value(v) for k, v in pick("metrics", data.metrics).items()},
        "tags": pick("tags", data.tags),
    }


def _page_from_client(store: MlflowStore, query: RunsQuery) -> dict[str, Any]:
    from mlflow.entities import ViewType

    check_server_token(query.page_token)

    page = store.client.search_runs(
        query.experiment_ids,
        query.filter_string,
        run_view_type=ViewType.ALL if query.include_deleted else ViewType.ACTIVE_ONLY,
        max_results=query.page_size,
        order_by=query.order_by or None,
        page_token=query.page_token or None,
    )
    columns: dict[str, set[str]] = {kind: set() for kind in COLUMN_KINDS}
    names = {e: store.client.get_experiment(e).name for e in {run.info.experiment_id for run in page}}
    for run in page:
        columns["params"].update(run.data.params)
        columns["metrics"].update(run.data.metrics)
        columns["tags"].update(run.data.tags)
    return {
        "runs": [{**run_document(run, query), "experiment_name": names[run.info.experiment_id]} for run in page],
        "next_page_token": page.token or None,
        "total": None,  # a tracking server does not count matches
        "columns": {kind: sorted(keys) for kind, keys in columns.items()},
    }
