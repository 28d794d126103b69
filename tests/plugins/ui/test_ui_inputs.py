"""Malformed input is a 400 ``{"error", "hint"}`` naming the parameter, never a 5xx.

Each case runs on sqlite, on PostgreSQL and on MariaDB read directly through SQL, and through a
real ``mlflow server`` on PostgreSQL: sqlite overflows past int64 where PostgreSQL refuses the
query, and a server answers 500 for what its database refused.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from .ui_helpers import UI, SmallStore

INT64_MAX = 2**63 - 1
SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() is True, int() refuses it
ARABIC_INDIC_12 = "\u0661\u0662"  # int() reads it as 12
FULLWIDTH_ONE = "\uff11"
STORES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.server),
    pytest.param("mariadb", marks=[pytest.mark.server, pytest.mark.mysql]),
    pytest.param("server", marks=pytest.mark.server),
]


@pytest.fixture(params=STORES)
def store_ui(request: pytest.FixtureRequest) -> tuple[UI, SmallStore]:
    ui_fixture, store_fixture = {
        "sqlite": ("ui_sqlite", "sqlite_store"),
        "postgres": ("ui_postgres", "postgres_store"),
        "mariadb": ("ui_mariadb", "mariadb_store"),
        "server": ("ui_server", "server_store"),
    }[request.param]
    return request.getfixturevalue(ui_fixture), request.getfixturevalue(store_fixture)


def q(**params: object) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)


def offset_token(offset: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def assert_bad_request(ui: UI, path: str, parameter: str) -> None:
    status, body = ui.get(path)
    assert status == 400, (path, status, body)
    assert set(body) == {"error", "hint"}, body
    assert parameter in body["error"], body
    assert body["hint"], body


# -- the runs table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids",
    [
        SUPERSCRIPT_TWO,
        ARABIC_INDIC_12,
        FULLWIDTH_ONE,
        str(INT64_MAX + 1),
        str(2**64),
        "9" * 5000,  # past Python's int-from-text limit
        "1,-1",
    ],
)
def test_experiment_ids_must_be_ascii_digits_within_int64(store_ui: tuple[UI, SmallStore], ids: str) -> None:
    ui, _store = store_ui
    assert_bad_request(ui, "/api/runs" + q(experiment_ids=ids), "experiment_ids")


def test_the_largest_int64_experiment_id_is_a_valid_empty_query(store_ui: tuple[UI, SmallStore]) -> None:
    ui, _store = store_ui
    page = ui.ok("/api/runs" + q(experiment_ids=INT64_MAX))
    assert page["runs"] == []


@pytest.mark.parametrize("offset", [INT64_MAX + 1, 2**70, -1, True, 1.5, "5"])
def test_page_token_offsets_beyond_int64_or_not_ints_are_refused(
    store_ui: tuple[UI, SmallStore], offset: object
) -> None:
    ui, store = store_ui
    path = "/api/runs" + q(experiment_ids=store.experiment_id, page_token=offset_token(offset))
    assert_bad_request(ui, path, "page_token")


@pytest.mark.parametrize("size", [ARABIC_INDIC_12, "1_000", " 5", "5.0", "0x10", "", str(2**70), "0", "1001"])
def test_page_size_is_ascii_digits_within_its_range(store_ui: tuple[UI, SmallStore], size: str) -> None:
    ui, store = store_ui
    if size == "":
        ui.ok("/api/runs" + q(experiment_ids=store.experiment_id, page_size=size))  # empty: the default
        return
    assert_bad_request(ui, "/api/runs" + q(experiment_ids=store.experiment_id, page_size=size), "page_size")


@pytest.mark.parametrize(
    "order_by",
    [
        ["start_time", "start_time"],
        ["metrics.loss", "metrics.`loss` DESC"],
        ["params.lr ASC", "param.lr DESC"],
        ["attributes.run_name", "run_name"],
    ],
)
def test_an_order_by_naming_a_field_twice_is_refused(store_ui: tuple[UI, SmallStore], order_by: list[str]) -> None:
    ui, store = store_ui
    assert_bad_request(ui, "/api/runs" + q(experiment_ids=store.experiment_id, order_by=order_by), "order_by")


def test_a_filter_number_beyond_int64_is_refused(store_ui: tuple[UI, SmallStore]) -> None:
    ui, store = store_ui
    path = "/api/runs" + q(experiment_ids=store.experiment_id, filter=f"attributes.start_time > {2**70}")
    assert_bad_request(ui, path, "filter")
    page = ui.ok("/api/runs" + q(experiment_ids=store.experiment_id, filter=f"attributes.start_time < {INT64_MAX}"))
    assert [r["run_id"] for r in page["runs"]] == [store.run_id]


def test_the_runs_table_reads_filters_and_sorts_on_every_store(store_ui: tuple[UI, SmallStore]) -> None:
    ui, store = store_ui
    page = ui.ok(
        "/api/runs" + q(experiment_ids=store.experiment_id, filter="metrics.loss < 1", order_by=["metrics.`loss` DESC"])
    )
    [row] = page["runs"]
    assert row["run_id"] == store.run_id and row["params"] == {"lr": "0.1"} and row["metrics"] == {"loss": 0.5}
    # the experiment's name comes with the row, on a SQL store and through a tracking server alike
    from mlflow import MlflowClient

    assert row["experiment_name"] == MlflowClient(store.uri).get_experiment(store.experiment_id).name


# -- validation errors of every kind ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/runs?include_deleted=maybe", "include_deleted"),
        ("/api/deployments?refresh=perhaps", "refresh"),
        ("/api/metrics/history?run_ids=x", "keys"),
        ("/api/model/panels?version=1", "name"),
        ("/api/runs/x/artifacts/file", "path"),
    ],
)
def test_request_validation_errors_are_400_with_error_and_hint(
    store_ui: tuple[UI, SmallStore], path: str, parameter: str
) -> None:
    ui, _store = store_ui
    assert_bad_request(ui, path, parameter)


def test_a_login_without_a_json_body_is_400(store_ui: tuple[UI, SmallStore]) -> None:
    ui, _store = store_ui
    status, body = ui.get("/api/auth/login", method="POST", body={"password": "x"})
    assert status == 400 and set(body) == {"error", "hint"} and "token" in body["error"]


# -- metric histories and model versions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("step_min", "nan"),
        ("step_min", "inf"),
        ("step_max", "1e400"),
        ("step_min", str(INT64_MAX + 1)),
        ("step_max", str(-(2**63) - 1)),
        ("step_min", "1.5"),
        ("max_points", ARABIC_INDIC_12 + "0"),
        ("max_points", str(2**70)),
        ("max_points", "2"),
    ],
)
def test_history_numbers_are_ascii_integers_within_range(
    store_ui: tuple[UI, SmallStore], parameter: str, value: str
) -> None:
    ui, store = store_ui
    path = "/api/metrics/history" + q(run_ids=store.run_id, keys="loss", **{parameter: value})
    assert_bad_request(ui, path, parameter)


def test_a_full_int64_step_window_is_a_valid_history_query(store_ui: tuple[UI, SmallStore]) -> None:
    ui, store = store_ui
    body = ui.ok("/api/metrics/history" + q(run_ids=store.run_id, keys="loss", step_min=-(2**63), step_max=INT64_MAX))
    assert body["series"][0]["steps"] == [0] and body["series"][0]["values"] == [0.5]


@pytest.mark.parametrize(
    "version",
    [ARABIC_INDIC_12, SUPERSCRIPT_TWO, FULLWIDTH_ONE, "0", "-1", str(2**31), str(INT64_MAX + 1), "1.0", "latest"],
)
def test_model_versions_are_positive_ascii_integers_mlflow_can_store(
    store_ui: tuple[UI, SmallStore], version: str
) -> None:
    ui, store = store_ui
    assert_bad_request(ui, "/api/model/panels" + q(name=store.model, version=version), "version")


def test_an_existing_model_version_still_has_panels(store_ui: tuple[UI, SmallStore]) -> None:
    ui, store = store_ui
    assert ui.ok("/api/model/panels" + q(name=store.model, version=1)) == []


# -- text PostgreSQL cannot hold -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/metrics/history?run_ids=a%00b&keys=loss", "run_ids"),
        ("/api/model?name=a%00b", "name"),
        ("/api/runs?filter=params.x%20%3D%20%27a%00b%27", "filter"),
        ("/api/runs?columns=params.a%00b", "columns"),
        ("/api/runs?order_by=params.%60a%00b%60", "order_by"),
    ],
)
def test_a_nul_character_in_a_query_is_refused(store_ui: tuple[UI, SmallStore], path: str, parameter: str) -> None:
    ui, _store = store_ui
    assert_bad_request(ui, path, parameter)
