"""The UI's write routes: rename, description, tags, delete/restore, model aliases -- each refused
without auth (when auth is on), from another origin (CSRF), and on bad input, with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from conftest import fresh_sqlite_uri
from mlflow import MlflowClient

from .ui_helpers import TOKEN, UI, SmallStore, screenshot, seed_small, serve

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def store(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> SmallStore:
    """A store of this module's own: these tests write."""
    return seed_small(fresh_sqlite_uri(_sqlite_template, tmp_path_factory.mktemp("ui-actions")))


@pytest.fixture(scope="module")
def ui(store: SmallStore) -> Iterator[UI]:
    with serve(tracking_uri=store.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="module")
def ui_token(store: SmallStore) -> Iterator[UI]:
    with serve(tracking_uri=store.uri, host="0.0.0.0", auth_token=TOKEN) as server:
        yield UI(server.url)


@pytest.fixture(scope="module")
def client(store: SmallStore) -> MlflowClient:
    return MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)


def new_run(store: SmallStore, client: MlflowClient, name: str = "to-edit") -> str:
    run = client.create_run(store.experiment_id, run_name=name, tags={"team": "owls"})
    return str(run.info.run_id)


def same_site(ui: UI) -> dict[str, str]:
    """What a browser sends from one of the UI's own pages."""
    return {"Origin": ui.url, "Sec-Fetch-Site": "same-origin"}


def send(ui: UI, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return ui.get(path, method=method, body=body, headers=headers if headers is not None else same_site(ui))


def test_a_run_is_renamed_described_and_retagged_in_one_request(
    ui: UI, store: SmallStore, client: MlflowClient
) -> None:
    run_id = new_run(store, client)
    status, body = send(
        ui,
        "PATCH",
        f"/api/runs/{run_id}",
        {"name": "owls-v2", "description": "Tried <b>bold</b> owls", "set_tags": {"stage": "review"}},
    )
    assert status == 200, body
    assert body["run_name"] == "owls-v2"
    assert body["description"] == "Tried <b>bold</b> owls"
    assert body["tags"] == {"team": "owls", "stage": "review"}
    run = client.get_run(run_id)
    assert run.info.run_name == "owls-v2"
    assert run.data.tags["mlflow.note.content"] == "Tried <b>bold</b> owls"
    status, body = send(ui, "PATCH", f"/api/runs/{run_id}", {"delete_tags": ["team"]})
    assert status == 200, body
    assert "team" not in client.get_run(run_id).data.tags


def test_a_tag_set_from_the_ui_on_a_finished_run_is_a_column_at_once(
    ui: UI, store: SmallStore, client: MlflowClient
) -> None:
    run_id = new_run(store, client, "finished")
    client.set_terminated(run_id)
    client.set_terminated(new_run(store, client, "newer"))  # so the edited run is not the newest one
    status, page = ui.get(f"/api/runs?experiment_ids={store.experiment_id}")
    assert status == 200 and "reviewed-by" not in page["columns"]["tags"]  # the column keys are now cached
    status, body = send(ui, "PATCH", f"/api/runs/{run_id}", {"set_tags": {"reviewed-by": "ana"}})
    assert status == 200, body
    status, page = ui.get(f"/api/runs?experiment_ids={store.experiment_id}")
    assert "reviewed-by" in page["columns"]["tags"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x" * 251}, "name"),
        ({"name": "  "}, "name"),
        ({"set_tags": {"bad/../key": "v"}}, "tag name"),
        ({"set_tags": {"mlflow.user": "me"}}, "tag name"),
        ({"set_tags": {"ok": "v" * 8001}}, "tag 'ok' value"),
        ({"delete_tags": ["not-there"]}, "delete_tags"),
        ({"description": "nul \x00 here"}, "description"),
        ({"nickname": "owl"}, "nickname"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    ui: UI, store: SmallStore, client: MlflowClient, changes: dict[str, Any], field: str
) -> None:
    run_id = new_run(store, client)
    before = client.get_run(run_id).data.tags
    # a valid rename rides along: it must not be written either
    status, body = send(ui, "PATCH", f"/api/runs/{run_id}", {"description": "kept out", **changes})
    assert status == 400, body
    assert field in body["error"] and body["hint"]
    assert client.get_run(run_id).data.tags == before


def test_a_run_is_deleted_then_restored(ui: UI, store: SmallStore, client: MlflowClient) -> None:
    run_id = new_run(store, client, "doomed")
    status, body = send(ui, "POST", f"/api/runs/{run_id}/delete")
    assert (status, body["lifecycle_stage"]) == (200, "deleted")
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    listed = ui.ok(f"/api/runs?experiment_ids={store.experiment_id}")
    assert run_id not in [r["run_id"] for r in listed["runs"]]
    status, body = send(ui, "PATCH", f"/api/runs/{run_id}", {"name": "ghost"})
    assert status == 400 and "restore it first" in body["hint"]
    status, body = send(ui, "POST", f"/api/runs/{run_id}/restore")
    assert (status, body["lifecycle_stage"]) == (200, "active")
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_an_unknown_run_is_404(ui: UI) -> None:
    status, body = send(ui, "POST", "/api/runs/" + "0" * 32 + "/delete")
    assert status == 404, body


def test_an_alias_is_set_moved_and_removed(ui: UI, store: SmallStore, client: MlflowClient) -> None:
    client.create_model_version(store.model, source=f"runs:/{store.run_id}/model", run_id=store.run_id)
    status, body = send(ui, "PUT", "/api/model/aliases", {"name": store.model, "alias": "champion", "version": 1})
    assert (status, body["aliases"]) == (200, {"champion": 1})
    status, body = send(ui, "PUT", "/api/model/aliases", {"name": store.model, "alias": "champion", "version": 2})
    assert (status, body["aliases"]) == (200, {"champion": 2})
    assert str(client.get_model_version_by_alias(store.model, "champion").version) == "2"
    status, body = send(ui, "DELETE", f"/api/model/aliases?name={store.model}&alias=champion")
    assert (status, body["aliases"]) == (200, {})


@pytest.mark.parametrize(
    ("alias", "version", "status"),
    [("latest", 1, 400), ("v3", 1, 400), ("has space", 1, 400), ("ok", 99, 404), ("ok", 0, 400)],
)
def test_a_bad_alias_or_version_is_refused(
    ui: UI, store: SmallStore, client: MlflowClient, alias: str, version: int, status: int
) -> None:
    got, body = send(ui, "PUT", "/api/model/aliases", {"name": store.model, "alias": alias, "version": version})
    assert got == status, body
    assert body["error"]
    assert alias not in (client.get_registered_model(store.model).aliases or {})


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_change_from_another_origin_is_refused_with_403(
    ui: UI, store: SmallStore, client: MlflowClient, headers: dict[str, str]
) -> None:
    run_id = new_run(store, client, "csrf-target")
    status, body = send(ui, "PATCH", f"/api/runs/{run_id}", {"name": "pwned"}, headers)
    assert status == 403, body
    assert "own pages" in body["error"] and body["hint"]
    status, _ = send(ui, "POST", f"/api/runs/{run_id}/delete", headers=headers)
    assert status == 403
    run = client.get_run(run_id)
    assert (run.info.run_name, run.info.lifecycle_stage) == ("csrf-target", "active")


def test_a_script_without_browser_headers_may_write(ui: UI, store: SmallStore, client: MlflowClient) -> None:
    run_id = new_run(store, client)
    status, _ = send(ui, "PATCH", f"/api/runs/{run_id}", {"name": "scripted"}, headers={})
    assert status == 200
    assert client.get_run(run_id).info.run_name == "scripted"


def test_with_auth_on_every_write_needs_the_token(ui_token: UI, store: SmallStore, client: MlflowClient) -> None:
    run_id = new_run(store, client, "guarded")
    writes: list[tuple[str, str, Any]] = [
        ("PATCH", f"/api/runs/{run_id}", {"name": "nope"}),
        ("POST", f"/api/runs/{run_id}/delete", None),
        ("POST", f"/api/runs/{run_id}/restore", None),
        ("PUT", "/api/model/aliases", {"name": store.model, "alias": "nope", "version": 1}),
        ("DELETE", f"/api/model/aliases?name={store.model}&alias=nope", None),
    ]
    for method, path, body in writes:
        status, answer = send(ui_token, method, path, body)
        assert status == 401, (method, path, answer)
    assert client.get_run(run_id).info.run_name == "guarded"
    status, answer = send(ui_token, "PATCH", f"/api/runs/{run_id}", {"name": "allowed"}, BEARER)
    assert status == 200, answer
    # a token does not excuse a cross-origin page: the cookie session is what CSRF would ride on
    status, _ = send(ui_token, "POST", f"/api/runs/{run_id}/delete", None, {**BEARER, "Origin": "https://evil.example"})
    assert status == 403


def test_a_hosted_front_end_in_cors_origins_may_write(store: SmallStore, client: MlflowClient) -> None:
    run_id = new_run(store, client)
    with serve(tracking_uri=store.uri, cors_origins=["https://ui.example"]) as server:
        hosted = UI(server.url)
        preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "PATCH"}
        status, headers, _ = hosted.request(f"/api/runs/{run_id}", method="OPTIONS", headers=preflight)
        assert status == 200 and "PATCH" in headers["access-control-allow-methods"]
        status, body = send(
            hosted, "PATCH", f"/api/runs/{run_id}", {"name": "hosted"}, {"Origin": "https://ui.example"}
        )
    assert status == 200, body
    assert client.get_run(run_id).info.run_name == "hosted"


def test_writes_go_through_a_real_mlflow_server(server_store: SmallStore, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=server_store.uri)
    # an experiment of its own: the session's server store is shared with other modules' tests
    experiment_id = client.create_experiment(f"ui-actions-remote-{uuid4().hex[:8]}")
    run_id = str(client.create_run(experiment_id, run_name="remote", tags={"team": "owls"}).info.run_id)
    with serve(tracking_uri=server_store.uri) as server:
        remote = UI(server.url)
        status, body = send(remote, "PATCH", f"/api/runs/{run_id}", {"name": "renamed", "set_tags": {"k": "v"}})
        assert status == 200, body
        assert send(remote, "POST", f"/api/runs/{run_id}/delete")[0] == 200
        assert send(remote, "POST", f"/api/runs/{run_id}/restore")[0] == 200
    run = client.get_run(run_id)
    assert (run.info.run_name, run.data.tags["k"], run.info.lifecycle_stage) == ("renamed", "v", "active")


# -- the browser ----------------------------------------------------------------------------------


def test_the_run_page_renames_describes_and_retags_a_run(
    page: Any, ui: UI, store: SmallStore, client: MlflowClient, frontend_built: None
) -> None:
    run_id = new_run(store, client, "browser-run")
    page.goto(f"{ui.url}/run/?id={run_id}")
    actions = page.get_by_test_id("run-actions")
    message = actions.get_by_test_id("action-message")
    actions.get_by_test_id("rename-input").fill("browser-run-v2")
    actions.get_by_test_id("rename-save").click()
    message.get_by_text("Renamed to browser-run-v2.").wait_for()
    actions.get_by_test_id("description-input").fill("Owls at <b>night</b>, second try")
    actions.get_by_test_id("description-save").click()
    message.get_by_text("Description saved.").wait_for()
    actions.get_by_test_id("tag-key").fill("stage")
    actions.get_by_test_id("tag-value").fill("review")
    actions.get_by_test_id("tag-add").click()
    actions.get_by_test_id("tag-list").get_by_text("stage = review").wait_for()
    actions.get_by_role("button", name="remove tag team").click()
    message.get_by_text("Tag team removed.").wait_for()
    # a refused change shows the server's reason and writes nothing
    actions.get_by_test_id("tag-key").fill("mlflow.user")
    actions.get_by_test_id("tag-add").click()
    assert "system tag" in actions.get_by_role("alert").inner_text()
    actions.scroll_into_view_if_needed()
    screenshot(page, "run-actions")
    run = client.get_run(run_id)
    assert run.info.run_name == "browser-run-v2"
    assert run.data.tags["mlflow.note.content"] == "Owls at <b>night</b>, second try"
    assert run.data.tags["stage"] == "review" and "team" not in run.data.tags
    page.reload()
    assert page.get_by_test_id("run-name").inner_text().strip() == "browser-run-v2"


def test_a_run_deleted_on_its_page_is_restored_from_the_runs_page(
    page: Any, ui: UI, store: SmallStore, client: MlflowClient, frontend_built: None
) -> None:
    run_id = new_run(store, client, "browser-doomed")
    page.goto(f"{ui.url}/run/?id={run_id}")
    page.get_by_test_id("run-delete").click()
    page.get_by_test_id("run-delete-confirm").click()
    page.get_by_test_id("run-deleted-note").wait_for()
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    page.goto(f"{ui.url}/runs/?experiment={store.experiment_id}")
    page.get_by_test_id("show-deleted").check()
    row = page.get_by_test_id("deleted-runs").locator("tr", has_text="browser-doomed")
    row.wait_for()
    screenshot(page, "runs-show-deleted")
    row.get_by_test_id("restore-run").click()
    row.get_by_text("restored: open").wait_for()
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_model_aliases_are_set_moved_and_removed_on_the_model_page(
    page: Any, ui: UI, store: SmallStore, client: MlflowClient, frontend_built: None
) -> None:
    name = f"{store.model}-aliases"
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=f"runs:/{store.run_id}/model", run_id=store.run_id)
    page.goto(f"{ui.url}/model/?name={name}")
    message = page.get_by_test_id("alias-message")
    page.get_by_test_id("alias-name").fill("champion")
    page.get_by_test_id("alias-version").select_option("1")
    page.get_by_test_id("alias-set").click()
    message.get_by_text("@champion set on v1.").wait_for()
    page.get_by_test_id("alias-name").fill("champion")
    page.get_by_test_id("alias-version").select_option("2")
    assert page.get_by_test_id("alias-set").inner_text() == "Move alias"
    page.get_by_test_id("alias-set").click()
    message.get_by_text("@champion moved from v1 to v2.").wait_for()
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    page.get_by_test_id("alias-name").fill("latest")
    page.get_by_test_id("alias-set").click()
    message.get_by_text("is reserved by MLflow").wait_for()
    screenshot(page, "model-aliases")
    page.get_by_role("button", name="remove alias champion").click()
    message.get_by_text("@champion removed.").wait_for()
    assert not client.get_registered_model(name).aliases
