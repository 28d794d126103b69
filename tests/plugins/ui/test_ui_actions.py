"""The UI's write routes: rename, description, tags, delete/restore, model aliases -- each refused
without auth (when auth is on), from another origin (CSRF), and on bad input, with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from .ui_helpers import TOKEN, UI, SmallStore, seed_small, serve

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SmallStore:
    """A store of this module's own: these tests write."""
    return seed_small(f"sqlite:///{tmp_path_factory.mktemp('ui-actions') / 'mlflow.db'}")


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
        status, body = send(
            hosted, "PATCH", f"/api/runs/{run_id}", {"name": "hosted"}, {"Origin": "https://ui.example"}
        )
    assert status == 200, body
    assert client.get_run(run_id).info.run_name == "hosted"


def test_writes_go_through_a_real_mlflow_server(server_store: SmallStore, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=server_store.uri)
    run_id = new_run(server_store, client, "remote")
    with serve(tracking_uri=server_store.uri) as server:
        remote = UI(server.url)
        status, body = send(remote, "PATCH", f"/api/runs/{run_id}", {"name": "renamed", "set_tags": {"k": "v"}})
        assert status == 200, body
        assert send(remote, "POST", f"/api/runs/{run_id}/delete")[0] == 200
        assert send(remote, "POST", f"/api/runs/{run_id}/restore")[0] == 200
    run = client.get_run(run_id)
    assert (run.info.run_name, run.data.tags["k"], run.info.lifecycle_stage) == ("renamed", "v", "active")
