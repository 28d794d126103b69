"""The UI's fast read paths give what the plain reads give, on sqlite, PostgreSQL and MySQL (MariaDB).

The runs table keeps each experiment's column keys between pages; the metric histories read
short series together and cut long ones in SQL. Each is checked here against the plain read
it replaces (``_all_keys``, ``_rows_from_sql`` + ``_series``) on a real store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from conftest import fresh_sqlite_uri

from .ui_helpers import SmallStore

STEPS = 3000
SPIKE = 1234


@pytest.fixture(params=["sqlite", "postgresql", pytest.param("mysql", marks=[pytest.mark.server, pytest.mark.mysql])])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(fresh_sqlite_uri(request.getfixturevalue("_sqlite_template"), tmp_path))
    if request.param == "mysql":
        mariadb_store: SmallStore = request.getfixturevalue("mariadb_store")
        return mariadb_store.uri
    postgres_store: SmallStore = request.getfixturevalue("postgres_store")
    return postgres_store.uri


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    from mltrack_ui.metric_history import CACHE
    from mltrack_ui.runs_table import COLUMN_KEYS

    CACHE.clear()
    COLUMN_KEYS.clear()
    yield
    CACHE.clear()
    COLUMN_KEYS.clear()


def log_series(client: Any, run_id: str, key: str, values: list[float], first_step: int = 0) -> None:
    from mlflow.entities import Metric

    metrics = [Metric(key, v, 1_700_000_000_000 + i, first_step + i) for i, v in enumerate(values)]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def loss(step: int) -> float:
    return 1.0 / (step + 1) + (50.0 if step == SPIKE else 0.0) - (9.0 if step == SPIKE + 7 else 0.0)


def plain(store: Any, run_id: str, key: str, query: Any) -> dict[str, Any]:
    """The series as the plain read makes it: every row into Python, cut by minmax_downsample."""
    from mltrack_ui.metric_history import _rows_from_sql, _series
    from mltrack_ui.sql_store import sqlalchemy_store

    backend = sqlalchemy_store(store)
    rows = _rows_from_sql(backend, run_id, key, query)
    return _series(run_id, key, rows, query.max_points)


def test_series_cut_in_sql_keep_first_last_lowest_highest_and_zoom_gives_full_detail(
    store_uri: str, fresh_caches: None
) -> None:
    from mlflow import MlflowClient

    from mltrack.extend import MlflowStore
    from mltrack_ui.metric_history import HistoryQuery, metric_histories

    client = MlflowClient(tracking_uri=store_uri)
    experiment_id = client.create_experiment(f"speed-{uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    values = [loss(s) for s in range(STEPS)]
    values[10] = math.nan  # kept out of the chart, counted
    values[2000:2130] = [math.nan] * 130  # whole step ranges without a finite point
    log_series(client, run_id, "loss", values)
    store = MlflowStore(store_uri)

    query = HistoryQuery([run_id], ["loss"], max_points=100)
    [cut] = metric_histories(store, query)
    reference = plain(store, run_id, "loss", query)

    assert cut["total"] == reference["total"] == STEPS - 131 and cut["nonfinite"] == reference["nonfinite"] == 131
    assert cut["downsampled"] and len(cut["steps"]) <= 100
    assert cut["steps"] == sorted(cut["steps"])
    assert cut["steps"][0] == 0 and cut["steps"][-1] == STEPS - 1
    assert max(cut["values"]) == max(reference["values"]) and SPIKE in cut["steps"]
    assert min(cut["values"]) == min(reference["values"]) and SPIKE + 7 in cut["steps"]
    # every point shipped is a logged point, with its own timestamp
    for step, value, stamp in zip(cut["steps"], cut["values"], cut["timestamps"], strict=True):
        assert value == values[step] and stamp == 1_700_000_000_000 + step

    zoom = HistoryQuery([run_id], ["loss"], max_points=100, step_min=SPIKE - 20, step_max=SPIKE + 29)
    [window] = metric_histories(store, zoom)
    assert window == plain(store, run_id, "loss", zoom)
    assert window["steps"] == list(range(SPIKE - 20, SPIKE + 30)) and not window["downsampled"]
    wider = HistoryQuery([run_id], ["loss"], max_points=100, step_min=SPIKE - 100, step_max=SPIKE + 199)
    [window] = metric_histories(store, wider)
    assert window["total"] == 300 and window["downsampled"] and len(window["steps"]) <= 100
    assert window["steps"][0] == SPIKE - 100 and window["steps"][-1] == SPIKE + 199
    assert SPIKE in window["steps"] and SPIKE + 7 in window["steps"]

    # logging a later step changes the series' fingerprint: the next request reads it again
    log_series(client, run_id, "loss", [-100.0], first_step=STEPS)
    [again] = metric_histories(store, query)
    assert again["total"] == STEPS - 130 and again["steps"][-1] == STEPS and min(again["values"]) == -100.0


def test_short_series_read_together_equal_the_plain_read(store_uri: str, fresh_caches: None) -> None:
    from mlflow import MlflowClient

    from mltrack.extend import MlflowStore
    from mltrack_ui.metric_history import HistoryQuery, metric_histories

    client = MlflowClient(tracking_uri=store_uri)
    experiment_id = client.create_experiment(f"speed-{uuid4().hex[:8]}")
    runs = [client.create_run(experiment_id).info.run_id for _ in range(4)]
    keys = ["a", "b", "c"]
    for i, run_id in enumerate(runs):
        for k, key in enumerate(keys[: 1 + i % 3]):  # some runs lack some keys
            log_series(client, run_id, key, [i + k + 1 / (s + 1) for s in range(30)] + [math.inf])
    store = MlflowStore(store_uri)

    for window in ({}, {"step_min": 5, "step_max": 12}):
        query = HistoryQuery(runs, keys, max_points=300, **window)  # type: ignore[arg-type]
        together = metric_histories(store, query)
        assert [(s["run_id"], s["key"]) for s in together] == [(r, k) for r in runs for k in keys]
        assert together == [plain(store, r, k, query) for r in runs for k in keys]
    assert together[0]["steps"] == list(range(5, 13)) and together[1]["total"] == 0
    assert metric_histories(store, HistoryQuery(runs, keys, max_points=300))[0]["nonfinite"] == 1


def test_column_keys_follow_new_runs_running_runs_and_a_refresh(store_uri: str, fresh_caches: None) -> None:
    from mlflow import MlflowClient

    from mltrack.extend import MlflowStore
    from mltrack_ui.runs_table import COLUMN_KEYS, COLUMN_KEYS_REFRESH_S, RunsQuery, _all_keys, search_runs_page
    from mltrack_ui.sql_store import sqlalchemy_store

    client = MlflowClient(tracking_uri=store_uri)
    experiment_id = client.create_experiment(f"speed-{uuid4().hex[:8]}")
    store = MlflowStore(store_uri)

    def columns() -> dict[str, list[str]]:
        return search_runs_page(store, RunsQuery([experiment_id]))["columns"]  # type: ignore[no-any-return]

    done = client.create_run(experiment_id).info.run_id
    client.log_param(done, "lr", "0.1")
    client.log_metric(done, "loss", 0.5)
    client.set_terminated(done)
    assert columns() == {"params": ["lr"], "metrics": ["loss"], "tags": ["mlflow.runName"]}

    live = client.create_run(experiment_id).info.run_id  # a new run: its keys show at once
    client.log_param(live, "batch", "32")
    assert columns()["params"] == ["batch", "lr"]
    client.log_metric(live, "acc", 0.9)  # a running run gains a key: it shows at once
    assert columns()["metrics"] == ["acc", "loss"]

    # A tag set on a finished run shows after the next full read, which runs in the background.
    client.set_tag(done, "team", "vision")
    COLUMN_KEYS.refresh_s = 0.0
    try:
        deadline = time.monotonic() + 20
        while "team" not in columns()["tags"]:
            assert time.monotonic() < deadline, "the full read never brought the new tag key"
            time.sleep(0.05)
    finally:
        COLUMN_KEYS.refresh_s = COLUMN_KEYS_REFRESH_S
    backend: Any = sqlalchemy_store(store)
    with backend.ManagedSessionMaker() as session:
        full = _all_keys(session, [int(experiment_id)], False)
    assert columns() == {kind: sorted(keys) for kind, keys in full.items()}
