"""Access to the MLflow store, imported only when a store is first touched."""

from __future__ import annotations

import gc
import logging
import socket
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mltrack import process_state
from mltrack.config.secrets import mask_secrets
from mltrack.errors import StoreError, StoreUnreachableError
from mltrack.storage.records import Batch, Metric
from mltrack.storage.sinks import Sink

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# mlflow, sqlalchemy and the settings (pydantic) are imported when a store is first touched, not by `import mltrack`
# (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.store")

REST_WRITE_TIMEOUT_S = 30


def _quiet_mlflow() -> None:
    """Keep MLflow's INFO lines ("Creating initial MLflow database tables...") out of the
    user's output; ``MLTRACK_DEBUG`` shows them."""
    from mltrack.config.settings import get_settings

    if get_settings().debug:
        return
    for name in ("mlflow.store.db.utils", "mlflow.store.model_registry.abstract_store", "alembic"):
        log = logging.getLogger(name)
        if log.level in (logging.NOTSET, logging.DEBUG, logging.INFO):
            log.setLevel(logging.WARNING)


REACH_TIMEOUT_S = 3.0


def _check_reachable(uri: str) -> None:
    """Fail in seconds, with one line, when a tracking server cannot be reached at all.

    MLflow's client retries a refused connection for minutes (7 retries with backoff) and
    then prints a long traceback; a TCP connect says the same at once. Behind an HTTP proxy
    the server may be reachable only through it, so no check is made there.
    """
    from urllib.request import getproxies, proxy_bypass

    parsed = urlsplit(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    if getproxies().get(parsed.scheme) and not proxy_bypass(parsed.hostname):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise StoreUnreachableError(
            f"cannot reach the tracking server at {uri}: {reason}",
            hint="check that `mlflow server` runs there and that MLTRACK_TRACKING_URI (or MLFLOW_TRACKING_URI) "
            "names it; `mltrack config show` says where the URI comes from",
        ) from None


CREDENTIALS_HINT = (
    "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account of that server "
    "(or MLFLOW_TRACKING_TOKEN where the server takes tokens)"
)


def _rest_host_creds(client: MlflowClient) -> Any:
    """The host credentials of ``client``'s store when it is an MLflow tracking server, else None."""
    try:
        from mlflow.store.tracking.rest_store import RestStore

        store = client._tracking_client.store
    except (ImportError, AttributeError):
        return None
    return store.get_host_creds() if isinstance(store, RestStore) else None


def _check_credentials(uri: str, creds: Any) -> None:
    """Fail at once, with one line naming the variables to set, when a tracking server that
    requires a login (``mlflow server --app-name basic-auth``) refuses this process's credentials.

    Otherwise the first call to need the server (``start_run``, ``mltrack sync``, a UI page)
    fails with MLflow's "API request ... failed with error code 401 != 200" and its response body.
    One read that any account may make tells; a server that cannot answer it now is left to the
    calls that follow, which report it their own way.
    """
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(  # type: ignore[no-untyped-call]
            creds,
            "/api/2.0/mlflow/experiments/search",
            "GET",
            max_retries=0,
            timeout=REACH_TIMEOUT_S,
            params={"max_results": 1},
        )
    except Exception:
        return
    shown = mask_secrets(uri)
    user = getattr(creds, "username", None)
    if response.status_code == 401:
        if user or getattr(creds, "token", None):
            who = f"the credentials of user {user!r}" if user else "the MLFLOW_TRACKING_TOKEN"
            raise StoreError(f"the tracking server at {shown} refused {who} (401 Unauthorized)", hint=CREDENTIALS_HINT)
        raise StoreError(
            f"the tracking server at {shown} requires a login (401 Unauthorized) and no credentials are set",
            hint=CREDENTIALS_HINT,
        )
    if response.status_code == 403:
        raise StoreError(
            f"the tracking server at {shown} refused user {user!r} access to experiments (403 Forbidden)",
            hint="ask an admin of that server for READ permission, or set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD to another account",
        )


class MlflowStore:
    """One MLflow tracking store (and its registry), by URI."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self._lock = threading.Lock()

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()
        _check_reachable(self.tracking_uri)
        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        creds = _rest_host_creds(client)
        if creds is not None:
            _check_credentials(self.tracking_uri, creds)
        # Importing MLflow leaves ~250k long-lived objects; without this, the next full
        # collection (150-400 ms, holding the GIL) lands inside someone's training loop.
        gc.freeze()
        return client

    @cached_property
    def _sql(self) -> Any:
        """MLflow's SQLAlchemy store behind the client, if that is what it is."""
        try:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = self.client._tracking_client.store
        except (ImportError, AttributeError):  # a future MLflow moved things: use the API
            return None
        if isinstance(store, SqlAlchemyStore) and store.engine.dialect.name in {"sqlite", "postgresql"}:
            return store
        return None

    @cached_property
    def _rest_creds(self) -> Any:
        """Host credentials of an MLflow tracking server, if that is the store."""
        return _rest_host_creds(self.client)

    def probe(self, run_id: str) -> bool:
        """Whether the store answers a read of ``run_id`` now (one quick try, no retries)."""
        try:
            if self._rest_creds is not None:
                from mlflow.utils.rest_utils import http_request

                response = http_request(  # type: ignore[no-untyped-call]
                    self._rest_creds,
                    "/api/2.0/mlflow/runs/get",
                    "GET",
                    max_retries=0,
                    timeout=5,
                    params={"run_id": run_id},
                )
                return bool(response.status_code == 200)
            self.client.get_run(run_id)
            return True
        except Exception:
            return False

    def write(self, batch: Batch) -> None:
        """Write a batch (within MLflow's per-request limits) to the store."""
        from mlflow.entities import Metric as MlflowMetric
        from mlflow.entities import Param, RunTag

        metrics = batch.metrics
        if metrics and self._sql is not None:
            self._write_metrics_sql(batch.run_id, metrics)
            metrics = []
        if not (metrics or batch.params or batch.tags):
            return
        if self._rest_creds is not None:
            self._write_rest(batch.run_id, metrics, batch)
            return
        self.client.log_batch(
            batch.run_id,
            metrics=[MlflowMetric(m.key, m.value, m.timestamp, m.step) for m in metrics],
            params=[Param(p.key, p.value) for p in batch.params],
            tags=[RunTag(t.key, t.value) for t in batch.tags],
            synchronous=True,
        )

    def _write_rest(self, run_id: str, metrics: list[Metric], batch: Batch) -> None:
        """One ``runs/log-batch`` request without MLflow's own retries.

        MLflow's client retries a refused connection 7 times with exponential backoff
        (minutes); the writer retries on its own schedule instead, so a down server is
        noticed quickly and reported at ``flush``.
        """
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        endpoint = "/api/2.0/mlflow/runs/log-batch"
        body = {
            "run_id": run_id,
            "metrics": [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step} for m in metrics],
            "params": [{"key": p.key, "value": p.value} for p in batch.params],
            "tags": [{"key": t.key, "value": t.value} for t in batch.tags],
        }
        response = http_request(  # type: ignore[no-untyped-call]
            self._rest_creds, endpoint, "POST", max_retries=0, timeout=REST_WRITE_TIMEOUT_S, json=body
        )
        verify_rest_response(response, endpoint)

    def _write_metrics_sql(self, run_id: str, metrics: list[Metric]) -> None:
        """Bulk-insert metrics into MLflow's own tables (``metrics``, ``latest_metrics``).

        MLflow's ORM path spends ~0.15 s per 1,000 points building objects; a Core
        ``INSERT ... ON CONFLICT DO NOTHING`` writes the same rows, through MLflow's own
        table definitions, in a few ms, and makes a replayed batch a no-op.
        """
        import sqlalchemy as sa
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

        store = self._sql
        if store.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert: Any = sqlite_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            insert = postgresql_insert

        rows = []
        latest: dict[str, dict[str, Any]] = {}
        for m in metrics:
            is_nan, value = store.sanitize_metric_value(m.value)
            row = {
                "run_uuid": run_id,
                "key": m.key,
                "value": value,
                "timestamp": m.timestamp,
                "step": m.step,
                "is_nan": is_nan,
            }
            rows.append(row)
            best = latest.get(m.key)
            if best is None or (m.step, m.timestamp, value) > (best["step"], best["timestamp"], best["value"]):
                latest[m.key] = row
        metric_table = SqlMetric.__table__
        latest_table = SqlLatestMetric.__table__
        with self._lock, store.engine.begin() as conn:
            conn.execute(insert(metric_table).on_conflict_do_nothing(), rows)
            current = {
                r.key: r
                for r in conn.execute(
                    sa.select(latest_table).where(
                        latest_table.c.run_uuid == run_id, latest_table.c.key.in_(list(latest))
                    )
                )
            }
            upserts = [
                row
                for key, row in latest.items()
                if key not in current
                or (row["step"], row["timestamp"], row["value"])
                > (current[key].step, current[key].timestamp, current[key].value)
            ]
            if upserts:
                stmt = insert(latest_table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["key", "run_uuid"],
                    set_={c: stmt.excluded[c] for c in ("value", "timestamp", "step", "is_nan")},
                )
                conn.execute(stmt, upserts)


class MlflowSink(Sink):
    """The primary sink: the MLflow store."""

    name = "mlflow"

    def __init__(self, store: MlflowStore) -> None:
        self.store = store

    def log_batch(self, batch: Batch) -> None:
        self.store.write(batch)

    def probe(self, run_id: str) -> bool:
        """Whether the store is healthy enough that a failed write means refused data."""
        return self.store.probe(run_id)


_stores: dict[tuple[str, str | None], MlflowStore] = {}
_stores_lock = threading.Lock()


def get_store(tracking_uri: str | None = None, registry_uri: str | None = None) -> MlflowStore:
    """The ``MlflowStore`` for a URI (default: the configured one), shared per process."""
    from mltrack.config.settings import get_settings

    settings = get_settings()
    uri = tracking_uri or settings.resolved_tracking_uri()
    registry = registry_uri or settings.registry_uri
    with _stores_lock:
        key = (uri, registry)
        if key not in _stores:
            _stores[key] = MlflowStore(uri, registry)
        return _stores[key]


def _forget_stores() -> None:
    with _stores_lock:
        _stores.clear()


def _after_fork_in_child() -> None:
    """Stop a forked child from using the parent's pooled database connections."""
    global _stores_lock
    _stores_lock = threading.Lock()
    for store in list(_stores.values()):
        sql = store.__dict__.get("_sql")
        if sql is not None:
            sql.engine.dispose(close=False)
        store._lock = threading.Lock()


process_state.register("stores", reset=_forget_stores, after_fork=_after_fork_in_child)
