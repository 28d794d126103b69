"""The one adapter between the UI and MLflow's private store internals (the UI's fast read path).

MLflow's own reads build an ORM object for every param, metric and tag of every run they
touch; the UI reads the rows it shows, and nothing else, from MLflow's tables. Any other
store (an ``http://`` tracking server, a plugin store) goes through ``MlflowClient``.

Reaching the SQL store and translating a search into SQL use MLflow names that are not public
(``MlflowClient._tracking_client.store``, ``_get_orderby_clauses``,
``_get_sqlalchemy_filter_clauses``). They are used here and nowhere else, and
``TESTED_MLFLOW`` names the MLflow releases they were tested with: a test fails, naming this
module, when the installed MLflow is outside that range. At run time an MLflow that moved
them makes the UI fall back to the client API rather than fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mltrack.extend import MlflowStore

SQL_DIALECTS = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
#: the MLflow releases this module's private names were tested with (widen after testing a new one)
TESTED_MLFLOW = ">=3.4,<3.18"


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


@dataclass(frozen=True)
class SearchClauses:
    """A run search as SQLAlchemy clauses, translated as MLflow's own ``search_runs`` does."""

    order_columns: list[Any]
    order_clauses: list[Any]
    order_joins: list[Any]
    attribute_filters: list[Any]
    joined_filters: list[Any]
    dataset_filters: list[Any]


def search_clauses(backend: Any, session: Any, filter_string: str | None, order_by: list[str] | None) -> SearchClauses:
    """``filter_string`` and ``order_by`` (MLflow's search syntax) as clauses on ``backend``'s tables,
    so a filter or an ordering means the same in the UI as in ``mlflow.search_runs``."""
    from mlflow.store.tracking import sqlalchemy_store as mlflow_sql
    from mlflow.utils import search_utils

    # MLflow's internals are untyped; these are the ones its own search_runs calls.
    private: Any = mlflow_sql
    search: Any = search_utils.SearchUtils
    parsed = search.parse_search_filter(filter_string)
    order_columns, order_clauses, order_joins = private._get_orderby_clauses(order_by or None, session)
    attribute_filters, joined_filters, dataset_filters = private._get_sqlalchemy_filter_clauses(
        parsed, session, backend._get_dialect()
    )
    return SearchClauses(
        list(order_columns),
        list(order_clauses),
        list(order_joins),
        list(attribute_filters),
        list(joined_filters),
        list(dataset_filters),
    )
