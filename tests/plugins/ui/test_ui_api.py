"""The UI's JSON API against a real sqlite store seeded by MLTrack and by plain MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from .ui_helpers import SECRET_TEXT, UI, Seeded, SmallStore, serve

XSS_NAME = "<img src=x onerror=alert(1)>"


def q(**params: object) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)


# -- runs table ---------------------------------------------------------------------------------


def test_first_page_has_runs_from_mltrack_and_plain_mlflow_with_params_and_latest_metrics(
    ui: UI, seeded: Seeded
) -> None:
    page = ui.ok("/api/runs" + q(experiment_ids=seeded.experiment_id))

    ids = {run["run_id"] for run in page["runs"]}
    assert {*seeded.table_runs, seeded.long_run, seeded.plain_run} == ids
    assert page["total"] == len(ids)
    first = next(r for r in page["runs"] if r["run_id"] == seeded.table_runs[1])
    assert first["params"] == {"lr": "0.01", "layers": "1", "optimizer": "adam"}
    assert first["metrics"]["loss"] == pytest.approx(2 / 20)  # the latest value, at step 19
    plain = next(r for r in page["runs"] if r["run_id"] == seeded.plain_run)
    assert plain["run_name"] == XSS_NAME and plain["params"]["lr"] == "0.5"
    assert {"lr", "layers", "optimizer", "note"} <= set(page["columns"]["params"])
    assert {"loss", "accuracy"} <= set(page["columns"]["metrics"])


def test_filter_uses_mlflow_syntax(ui: UI, seeded: Seeded) -> None:
    page = ui.ok(
        "/api/runs" + q(experiment_ids=seeded.experiment_id, filter="params.lr = '0.1' and metrics.accuracy > 0.2")
    )

    names = sorted(r["run_name"] for r in page["runs"])
    assert names == ["table-03", "table-06", "table-09"]  # lr 0.1 is every third run; table-00 has accuracy 0
    assert page["total"] == 3


def test_sorting_by_a_metric_both_ways(ui: UI, seeded: Seeded) -> None:
    def order(direction: str) -> list[str]:
        page = ui.ok(
            "/api/runs"
            + q(
                experiment_ids=seeded.experiment_id,
                filter="params.optimizer = 'adam'",
                order_by=f"metrics.`accuracy` {direction}",
            )
        )
        return [r["run_name"] for r in page["runs"]]

    ascending = order("ASC")
    assert ascending[:3] == ["table-00", "table-01", "table-02"]
    assert order("DESC")[:3] == ["table-11", "table-10", "table-09"]


def test_pagination_walks_every_run_once(ui: UI, seeded: Seeded) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = ui.ok("/api/runs" + q(experiment_ids=seeded.experiment_id, page_size=5, page_token=token))
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert len(seen) == len(set(seen)) == len(seeded.table_runs) + 2


def test_column_selection_returns_only_the_chosen_columns(ui: UI, seeded: Seeded) -> None:
    page = ui.ok("/api/runs" + q(experiment_ids=seeded.experiment_id, columns="params.lr,metrics.accuracy,tags.team"))

    plain = next(r for r in page["runs"] if r["run_id"] == seeded.plain_run)
    assert plain["params"] == {"lr": "0.5"} and plain["tags"] == {"team": "<script>alert(2)</script>"}
    table = next(r for r in page["runs"] if r["run_id"] == seeded.table_runs[0])
    assert set(table["metrics"]) == {"accuracy"}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"filter": "params.lr === 1"}, "filter"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"page_size": 0}, "page_size"),
        ({"columns": "bogus"}, "columns"),
        ({"experiment_ids": "ui-tests"}, "experiment_ids"),
    ],
)
def test_bad_runs_queries_are_400_with_a_message(ui: UI, params: dict[str, object], fragment: str) -> None:
    status, body = ui.get("/api/runs" + q(**params))
    assert status == 400
    assert fragment in body["error"] or fragment == "filter"  # MLflow's own parser words filter errors


def test_run_detail_splits_system_tags_from_user_tags(ui: UI, seeded: Seeded) -> None:
    run = ui.ok(f"/api/runs/{seeded.plain_run}")

    assert run["run_name"] == XSS_NAME
    assert run["tags"] == {"team": "<script>alert(2)</script>"}
    assert run["system"]["mlflow.runName"] == XSS_NAME
    assert run["metrics"]["loss"] == 0.125


def test_an_unknown_run_is_404(ui: UI) -> None:
    status, body = ui.get("/api/runs/0123456789abcdef0123456789abcdef")
    assert status == 404 and "not found" in body["error"]


def test_experiments_and_dashboard_count_runs_by_status(ui: UI, seeded: Seeded) -> None:
    experiments = ui.ok("/api/experiments")
    mine = next(e for e in experiments if e["experiment_id"] == seeded.experiment_id)
    assert mine["run_counts"] == {"FINISHED": len(seeded.table_runs) + 2}

    summary = ui.ok("/api/summary")
    assert summary["status_counts"]["FINISHED"] >= len(seeded.table_runs) + 2
    assert summary["recent_runs"][0]["run_id"] == seeded.plain_run  # the newest
    assert summary["models"] == 1


# -- metric histories ------------------------------------------------------------------------------


def test_a_100k_step_history_is_downsampled_and_keeps_its_spike(ui: UI, seeded: Seeded) -> None:
    body = ui.ok("/api/metrics/history" + q(run_ids=seeded.long_run, keys="loss", max_points=2000))

    [series] = body["series"]
    assert series["total"] == 100_000 and series["downsampled"]
    assert len(series["steps"]) <= 2000
    assert max(series["values"]) > 100  # the one-step spike at 31,337 survived
    assert 31_337 in series["steps"]
    assert series["steps"][0] == 0 and series["steps"][-1] == 99_999
    assert series["steps"] == sorted(series["steps"])


def test_a_step_range_returns_full_detail_of_that_window(ui: UI, seeded: Seeded) -> None:
    body = ui.ok(
        "/api/metrics/history" + q(run_ids=seeded.long_run, keys="loss", max_points=2000, step_min=100, step_max=599)
    )
    [series] = body["series"]
    assert series["steps"] == list(range(100, 600)) and not series["downsampled"]


def test_histories_of_many_runs_in_one_request_skip_nan(ui: UI, seeded: Seeded) -> None:
    runs = [*seeded.table_runs, seeded.plain_run]
    body = ui.ok("/api/metrics/history" + q(run_ids=",".join(runs), keys="loss"))

    by_run = {s["run_id"]: s for s in body["series"]}
    assert set(by_run) == set(runs)
    assert by_run[seeded.table_runs[0]]["steps"] == list(range(20))
    assert by_run[seeded.plain_run]["values"] == [0.25, 0.125] and by_run[seeded.plain_run]["nonfinite"] == 1


def test_history_requests_are_bounded(ui: UI, seeded: Seeded) -> None:
    status, _ = ui.get("/api/metrics/history" + q(run_ids=seeded.long_run, keys="loss", max_points=10**6))
    assert status == 400


def test_the_workspace_gets_5_metrics_of_50_runs_in_one_request(ui: UI, seeded: Seeded) -> None:
    runs = [seeded.table_runs[i % len(seeded.table_runs)] for i in range(50)]
    keys = ["loss", "acc", "lr", "f1", "none"]
    body = ui.ok("/api/metrics/history" + q(run_ids=",".join(runs), keys=",".join(keys), max_points=300))

    assert [(s["run_id"], s["key"]) for s in body["series"]] == [(r, k) for r in runs for k in keys]
    assert body["series"][0]["steps"] == list(range(20)) and body["series"][4]["total"] == 0
    status, _ = ui.get("/api/metrics/history" + q(run_ids=",".join([*runs, runs[0]]), keys=",".join(keys)))
    assert status == 400


# -- artifacts -------------------------------------------------------------------------------------


def artifact(ui: UI, seeded: Seeded, kind: str, path: str) -> tuple[int, dict[str, str], bytes]:
    return ui.request(f"/api/runs/{seeded.plain_run}/artifacts/{kind}?path={quote(path, safe='')}")


def test_artifacts_are_listed_by_folder(ui: UI, seeded: Seeded) -> None:
    root = ui.ok(f"/api/runs/{seeded.plain_run}/artifacts")
    assert {"config.json", "notes", "images", "report.html"} <= {a["path"] for a in root}
    notes = ui.ok(f"/api/runs/{seeded.plain_run}/artifacts" + q(path="notes"))
    assert notes == [{"path": "notes/readme.txt", "is_dir": False, "file_size": 18}]


def test_text_and_json_previews(ui: UI, seeded: Seeded) -> None:
    text = ui.ok(f"/api/runs/{seeded.plain_run}/artifacts/preview" + q(path="notes/readme.txt"))
    assert text["kind"] == "text" and text["content"] == "hello from mlflow\n"
    config = ui.ok(f"/api/runs/{seeded.plain_run}/artifacts/preview" + q(path="config.json"))
    assert config["kind"] == "json" and json.loads(config["content"]) == {"alpha": 1, "nested": {"b": [1, 2]}}


def test_an_image_is_previewed_inline_as_an_image(ui: UI, seeded: Seeded) -> None:
    preview = ui.ok(f"/api/runs/{seeded.plain_run}/artifacts/preview" + q(path="images/pixel.png"))
    assert preview["kind"] == "image"

    status, headers, body = ui.request(
        f"/api/runs/{seeded.plain_run}/artifacts/file" + q(path="images/pixel.png", inline="true")
    )
    assert status == 200 and body.startswith(b"\x89PNG")
    assert headers["content-type"] == "image/png" and headers["content-disposition"].startswith("inline")


def test_html_from_a_run_is_only_ever_a_download(ui: UI, seeded: Seeded) -> None:
    status, headers, body = ui.request(
        f"/api/runs/{seeded.plain_run}/artifacts/file" + q(path="report.html", inline="true")
    )
    assert status == 200 and b"<script>" in body
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment")
    assert "sandbox" in headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "notes/../../outside-secret.txt",
        "/etc/passwd",
        "..",
        "notes/..\\..\\x",
        "C:/Windows/win.ini",
    ],
)
@pytest.mark.parametrize("kind", ["file", "preview"])
def test_paths_outside_the_artifact_root_are_refused(ui: UI, seeded: Seeded, kind: str, path: str) -> None:
    status, _headers, body = artifact(ui, seeded, kind, path)
    assert status == 400, body
    assert SECRET_TEXT.encode() not in body


def test_a_symlink_out_of_the_artifact_root_is_refused(ui: UI, seeded: Seeded) -> None:
    status, _headers, body = artifact(ui, seeded, "file", "escape.txt")
    assert status == 400 and b"outside" in body
    assert SECRET_TEXT.encode() not in body


def test_listing_outside_the_root_is_refused(ui: UI, seeded: Seeded) -> None:
    status, _ = ui.get(f"/api/runs/{seeded.plain_run}/artifacts" + q(path="../.."))
    assert status == 400


# -- registry, deployments, plugins --------------------------------------------------------------


def test_registered_models_with_versions_aliases_and_source_runs(ui: UI, seeded: Seeded) -> None:
    [model] = ui.ok("/api/models")
    assert model["name"] == "churn" and model["aliases"] == {"champion": 2} and model["latest_version"] == 2

    detail = ui.ok("/api/model" + q(name="churn"))
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    v2, v1 = detail["versions"]
    assert v2["aliases"] == ["champion"] and v1["aliases"] == []
    assert v2["run_id"] == seeded.table_runs[1] and v2["deployments"] == []


def test_an_unknown_model_is_404(ui: UI) -> None:
    status, _ = ui.get("/api/model" + q(name="nope"))
    assert status == 404


def test_plugins_json_is_the_cli_listing(ui: UI) -> None:
    listing = ui.ok("/-/plugins.json")
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "mltrack"), "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert listing == json.loads(cli.stdout)
    ui_entry = next(p for p in listing if p["name"] == "ui")
    assert ui_entry["status"] == "loaded" and ui_entry["contributes"]["commands"] == ["ui"]


def test_unknown_api_routes_are_json_404(ui: UI) -> None:
    status, body = ui.get("/api/nothing/here")
    assert status == 404 and "no API route" in body["error"]


# -- secrets and strict JSON -----------------------------------------------------------------------


@pytest.mark.server
def test_the_store_uri_is_shown_with_its_passwords_masked(postgres_store: SmallStore) -> None:
    # libpq takes the password as a query parameter as readily as in the userinfo.
    in_query = postgres_store.uri.replace("mlflow:mlflow@", "") + "?user=mlflow&password=mlflow"
    for uri, shown in (
        (postgres_store.uri, postgres_store.uri.replace("mlflow:mlflow@", "mlflow:********@")),
        (in_query, in_query.replace("password=mlflow", "password=********")),
    ):
        with serve(tracking_uri=uri) as server:
            summary = UI(server.url).ok("/api/summary")
        assert summary["tracking_uri"] == shown
        assert summary["experiments"] >= 1  # the URI worked: the summary was read through it


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), None])
def test_a_metric_that_is_not_a_finite_number_is_sent_as_null(value: float | None) -> None:
    from mltrack_ui.runs_table import metric_value

    assert metric_value(value) is None


def test_a_model_whose_name_holds_both_quotes_and_a_backslash_is_shown(sqlite_uri: str) -> None:
    import mlflow

    name = "both ' and \" \\"
    client = mlflow.MlflowClient(sqlite_uri)
    run = client.create_run(client.create_experiment("quoted"))
    client.create_registered_model(name)
    client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    with serve(tracking_uri=sqlite_uri) as server:
        ui = UI(server.url)
        detail = ui.ok("/api/model" + q(name=name))
        panels = ui.ok("/api/model/panels" + q(name=name, version=1))
    assert detail["name"] == name and [v["version"] for v in detail["versions"]] == [1]
    assert isinstance(panels, list)
