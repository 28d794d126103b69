"""The UI's one adapter to MLflow's private names (mltrack_ui/sql_store.py) is pinned to tested MLflows."""

from __future__ import annotations

from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from mltrack_ui import sql_store


def test_the_installed_mlflow_is_one_the_ui_adapter_was_tested_with() -> None:
    installed = metadata.version("mlflow")
    assert Version(installed) in SpecifierSet(sql_store.TESTED_MLFLOW), (
        f"mltrack_ui/sql_store.py uses private MLflow names tested with mlflow{sql_store.TESTED_MLFLOW}, "
        f"and MLflow {installed} is installed: run the UI's tests against it, then widen TESTED_MLFLOW"
    )


def test_the_private_names_the_adapter_uses_exist() -> None:
    from mlflow.store.tracking import sqlalchemy_store
    from mlflow.tracking import MlflowClient

    for name in ("_get_orderby_clauses", "_get_sqlalchemy_filter_clauses"):
        assert callable(getattr(sqlalchemy_store, name, None)), f"MLflow no longer has {name}"
    assert hasattr(sqlalchemy_store.SqlAlchemyStore, "_get_dialect")
    # the client keeps its store here (set in __init__, so looked up on an instance's source)
    assert "_tracking_client" in MlflowClient.__init__.__code__.co_names
