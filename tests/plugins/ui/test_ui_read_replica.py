"""A UI reading a read replica writes its actions to the primary (``write_tracking_uri``).

The replica is stood in for by a PostgreSQL role whose transactions are read-only
(``default_transaction_read_only``): the database refuses its writes with the same error a hot
standby gives ("cannot execute ... in a read-only transaction").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .test_ui_actions import send
from .ui_helpers import UI, SmallStore, seed_small, serve

pytestmark = pytest.mark.server


@dataclass
class Replica:
    primary: SmallStore
    replica_uri: str


@pytest.fixture(scope="module")
def replica() -> Iterator[Replica]:
    import sqlalchemy as sa

    from mltrack.testing.servers import PostgresServer, postgres_bin_dir

    if postgres_bin_dir() is None:
        pytest.fail("PostgreSQL is not installed: run `make install` (it installs the Debian package)")
    base = Path(tempfile.mkdtemp(prefix="mltrack-ui-replica-"))
    os.chmod(base, 0o755)  # PostgreSQL runs as the postgres user
    postgres = PostgresServer(base / "cluster").start()
    try:
        primary = seed_small(postgres.uri)
        admin = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{postgres.port}/mlflow")
        with admin.begin() as connection:
            for statement in (
                "CREATE ROLE reader LOGIN PASSWORD 'reader'",
                "ALTER ROLE reader SET default_transaction_read_only = on",
                "GRANT USAGE ON SCHEMA public TO reader",
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader",
            ):
                connection.execute(sa.text(statement))
        admin.dispose()
        yield Replica(primary, f"postgresql+psycopg2://reader:reader@127.0.0.1:{postgres.port}/mlflow")
    finally:
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


def _name(uri: str, run_id: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri).get_run(run_id).info.run_name


def test_an_action_on_a_read_only_store_is_refused_with_a_hint_naming_write_tracking_uri(replica: Replica) -> None:
    with serve(tracking_uri=replica.replica_uri) as server:
        ui = UI(server.url)
        run_id = replica.primary.run_id
        assert ui.ok(f"/api/runs/{run_id}")["run_name"] == "only"  # reads work on the replica
        status, body = send(ui, "PATCH", f"/api/runs/{run_id}", {"name": "renamed"})
        assert status == 409, body
        assert "read-only" in body["error"] and "write_tracking_uri" in body["hint"]
        views = f"/api/views/v1?experiment_id={replica.primary.experiment_id}"
        status, body = send(ui, "PUT", views, {"tab": "charts"})
        assert status == 409 and "write_tracking_uri" in body["hint"], body
    assert _name(replica.primary.uri, run_id) == "only"


def test_with_write_tracking_uri_the_actions_go_to_the_primary_and_reads_stay_on_the_replica(
    replica: Replica,
) -> None:
    primary = replica.primary
    with serve(tracking_uri=replica.replica_uri, write_tracking_uri=primary.uri) as server:
        ui = UI(server.url)
        status, body = send(ui, "PATCH", f"/api/runs/{primary.run_id}", {"name": "renamed", "set_tags": {"team": "a"}})
        assert status == 200, body
        assert ui.ok(f"/api/runs/{primary.run_id}")["run_name"] == "renamed"
        status, body = send(ui, "PUT", f"/api/views/v1?experiment_id={primary.experiment_id}", {"tab": "charts"})
        assert status == 200, body
        assert [v["name"] for v in ui.ok(f"/api/views?experiment_id={primary.experiment_id}")] == ["v1"]
        status, body = send(ui, "PUT", "/api/model/aliases", {"name": primary.model, "alias": "champion", "version": 1})
        assert status == 200, body
        status, body = send(ui, "POST", f"/api/runs/{primary.run_id}/delete")
        assert status == 200, body
        status, body = send(ui, "POST", f"/api/runs/{primary.run_id}/restore")
        assert status == 200, body
    assert _name(primary.uri, primary.run_id) == "renamed"


def test_write_tracking_uri_is_a_ui_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrack.extend import plugin_settings

    monkeypatch.setenv("MLTRACK_PLUGINS__UI__WRITE_TRACKING_URI", " http://primary:5000 ")
    assert plugin_settings("ui").write_tracking_uri == "http://primary:5000"
    from mltrack_ui.settings import UISettings

    assert UISettings(write_tracking_uri="  ").write_tracking_uri is None  # blank: the store the UI reads
