"""The SQLAlchemy store behind an MLflow client, when there is one (the UI's fast read path).

MLflow's own reads build an ORM object for every param, metric and tag of every run they
touch; the UI reads the rows it shows, and nothing else, from MLflow's tables. Any other
store (an ``http://`` tracking server, a plugin store) goes through ``MlflowClient``.
"""

from __future__ import annotations

from typing import Any

from mltrack.extend import MlflowStore

SQL_DIALECTS = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


def sqlalchemy_store(store: MlflowStore) -> Any | None:
    """MLflow's ``SqlAlchemyStore`` behind ``store.client``, or None to use the client API."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        backend = store.client._tracking_client.store
    except (ImportError, AttributeError):  # a future MLflow moved things: use the API
        return None
    if isinstance(backend, SqlAlchemyStore) and backend.engine.dialect.name in SQL_DIALECTS:
        return backend
    return None
