"""The same API against a real ``mlflow server``: no SQL access, so every read goes through
``MlflowClient`` (REST), and artifacts come through the server's artifact proxy."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .ui_helpers import UI, Seeded

pytestmark = pytest.mark.slow


def q(**params: object) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v is not None})


def test_the_store_is_read_through_the_client(seeded_server: Seeded) -> None:
    from mltrack.storage.store import MlflowStore
    from mltrack_ui.sql_store import sqlalchemy_store

    assert sqlalchemy_store(MlflowStore(seeded_server.uri)) is None


def test_runs_page_filter_sort_and_columns(ui_remote: UI, seeded_server: Seeded) -> None:
    page = ui_remote.ok(
        "/api/runs"
        + q(
            experiment_ids=seeded_server.experiment_id,
            filter="params.lr = '0.1'",
            order_by="metrics.`accuracy` DESC",
            columns="params.lr,metrics.accuracy",
        )
    )
    assert [r["run_name"] for r in page["runs"]] == ["table-09", "table-06", "table-03", "table-00"]
    assert page["total"] is None  # a tracking server does not count
    assert page["runs"][0]["params"] == {"lr": "0.1"} and set(page["runs"][0]["metrics"]) == {"accuracy"}


def test_pagination_uses_the_servers_tokens(ui_remote: UI, seeded_server: Seeded) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = ui_remote.ok("/api/runs" + q(experiment_ids=seeded_server.experiment_id, page_size=4, page_token=token))
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == len(seeded_server.table_runs) + 2


def test_history_is_downsampled_on_the_ui_server(ui_remote: UI, seeded_server: Seeded) -> None:
    [series] = ui_remote.ok("/api/metrics/history" + q(run_ids=seeded_server.long_run, keys="loss", max_points=1000))[
        "series"
    ]
    assert series["total"] == seeded_server.long_steps and len(series["steps"]) <= 1000
    assert max(series["values"]) > 100  # the spike survived


def test_proxied_artifacts_are_listed_previewed_and_downloaded(ui_remote: UI, seeded_server: Seeded) -> None:
    run = seeded_server.plain_run
    assert {"config.json", "notes", "images"} <= {a["path"] for a in ui_remote.ok(f"/api/runs/{run}/artifacts")}
    preview = ui_remote.ok(f"/api/runs/{run}/artifacts/preview" + q(path="notes/readme.txt"))
    assert preview["content"] == "hello from mlflow\n"
    status, _headers, body = ui_remote.request(f"/api/runs/{run}/artifacts/file" + q(path="images/pixel.png"))
    assert status == 200 and body.startswith(b"\x89PNG")


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "notes/../../x"])
def test_traversal_is_refused_before_reaching_the_server(ui_remote: UI, seeded_server: Seeded, path: str) -> None:
    status, _headers, _body = ui_remote.request(f"/api/runs/{seeded_server.plain_run}/artifacts/file" + q(path=path))
    assert status == 400


def test_registry_through_the_server(ui_remote: UI) -> None:
    detail = ui_remote.ok("/api/model" + q(name="churn"))
    assert [v["version"] for v in detail["versions"]] == [2, 1] and detail["aliases"] == {"champion": 2}


def test_dashboard_counts_through_the_server(ui_remote: UI, seeded_server: Seeded) -> None:
    summary = ui_remote.ok("/api/summary")
    assert summary["status_counts"] == {"FINISHED": len(seeded_server.table_runs) + 2}
