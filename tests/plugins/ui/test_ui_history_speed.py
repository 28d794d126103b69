"""A first open of long series is sampled by index seeks, then refined to the exact cut.

On sqlite and on PostgreSQL: a series far longer than its point budget comes back within it,
marked ``sampled``, with its first and last points exact and only real points of the series;
the background refinement then puts the exact min/max cut (every spike) in the cache; a zoom
and a short series get the exact cut at once. On MySQL the first open is already the exact cut.

Sampling starts where a request's long series hold more than ``SAMPLE_TOTAL_ROWS`` (a million)
rows together, and the request's ``SAMPLE_SEEKS`` are shared out among its sampled series (fewer
points than the budget until the exact cut); the test lowers both knobs (monkeypatch) rather than
write a million rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from .test_ui_speed_paths import fresh_caches, plain, store_uri  # noqa: F401 (fixtures)

RUNS = 3
STEPS = 20_000
BUDGET = 200
SAMPLED_POINTS = 120  # each series' share of the request's index seeks (SAMPLE_SEEKS)
SPIKE = 12_345  # not the start of a sampled range: only the exact cut keeps it
STAMP = 1_700_000_000_000


def value(run: int, step: int) -> float:
    return run + 1.0 / (step + 1) + (50.0 if step == SPIKE else 0.0)


def long_runs(uri: str) -> list[str]:
    """RUNS runs with a STEPS-step ``loss``, written in bulk (MLflow's client would take minutes);
    the last step through the client, which moves ``latest_metrics`` as a live run would."""
    import sqlalchemy as sa
    from mlflow import MlflowClient
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(f"sampled-{uuid4().hex[:8]}")
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(RUNS)]
    rows = [
        {"key": "loss", "value": value(i, s), "timestamp": STAMP + s, "run_uuid": run_id, "step": s, "is_nan": False}
        for i, run_id in enumerate(run_ids)
        for s in range(STEPS - 1)
    ]
    backend = client._tracking_client.store
    with backend.engine.begin() as connection:
        connection.execute(sa.insert(SqlMetric.__table__), rows)
    for i, run_id in enumerate(run_ids):
        client.log_metric(run_id, "loss", value(i, STEPS - 1), timestamp=STAMP + STEPS - 1, step=STEPS - 1)
    return run_ids


def test_long_series_are_sampled_first_then_refined_zoom_and_short_series_exact(
    store_uri: str,  # noqa: F811
    fresh_caches: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow import MlflowClient

    from mltrack.extend import MlflowStore
    from mltrack_ui import metric_history
    from mltrack_ui.metric_history import REFINER, HistoryQuery, metric_histories

    monkeypatch.setattr(metric_history, "SAMPLE_TOTAL_ROWS", RUNS * STEPS - 1)
    monkeypatch.setattr(metric_history, "SAMPLE_SEEKS", RUNS * SAMPLED_POINTS)
    run_ids = long_runs(store_uri)
    store = MlflowStore(store_uri)
    query = HistoryQuery(run_ids, ["loss"], max_points=BUDGET)

    first = metric_histories(store, query)
    if store_uri.startswith("mysql"):
        # MySQL has no index-seek sampling: its first open is already the exact cut, in SQL
        for i, series in enumerate(first):
            assert "sampled" not in series and len(series["steps"]) <= BUDGET and SPIKE in series["steps"]
            assert max(series["values"]) == value(i, SPIKE) and min(series["values"]) == value(i, STEPS - 1)
        return
    for i, series in enumerate(first):
        assert series["sampled"] and series["downsampled"] and len(series["steps"]) <= SAMPLED_POINTS
        assert series["steps"][0] == 0 and series["steps"][-1] == STEPS - 1
        assert series["steps"] == sorted(set(series["steps"])) and len(series["steps"]) > SAMPLED_POINTS // 2
        assert series["total"] == STEPS
        for step, got, stamp in zip(series["steps"], series["values"], series["timestamps"], strict=True):
            assert got == value(i, step) and stamp == STAMP + step

    REFINER.wait()
    refined = metric_histories(store, query)
    for i, series in enumerate(refined):
        assert "sampled" not in series and SAMPLED_POINTS < len(series["steps"]) <= BUDGET
        assert (
            SPIKE in series["steps"]
            and series["total"] == STEPS
            and series["steps"][0] == 0
            and series["steps"][-1] == STEPS - 1
        )
        assert max(series["values"]) == value(i, SPIKE) and min(series["values"]) == value(i, STEPS - 1)

    zoom = HistoryQuery(run_ids[:1], ["loss"], max_points=BUDGET, step_min=SPIKE - 1000, step_max=SPIKE + 999)
    [window] = metric_histories(store, zoom)
    assert "sampled" not in window and window["total"] == 2000 and SPIKE in window["steps"]
    assert window["steps"][0] == SPIKE - 1000 and window["steps"][-1] == SPIKE + 999

    client = MlflowClient(tracking_uri=store_uri)
    short_run = client.create_run(client.get_run(run_ids[0]).info.experiment_id).info.run_id
    for s in range(50):
        client.log_metric(short_run, "loss", value(0, s), timestamp=STAMP + s, step=s)
    short = HistoryQuery([short_run], ["loss"], max_points=BUDGET)
    [whole] = metric_histories(store, short)
    assert (
        "sampled" not in whole and whole["steps"] == list(range(50)) and whole == plain(store, short_run, "loss", short)
    )


@pytest.mark.browser
def test_a_sampled_chart_shows_the_exact_cut_once_it_is_refined_without_a_reload(
    page: Any,
    frontend_built: None,
    tmp_path: Path,
    fresh_caches: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from mltrack_ui import metric_history

    from .ui_helpers import serve

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_ids = long_runs(uri)
    monkeypatch.setattr(metric_history, "SAMPLE_TOTAL_ROWS", RUNS * STEPS - 1)
    # the exact cut waits until the page has shown the sampled one
    release = threading.Event()
    exact_cut = metric_history._downsampled_in_sql

    def held_cut(*args: Any) -> Any:
        release.wait(60)
        return exact_cut(*args)

    monkeypatch.setattr(metric_history, "_downsampled_in_sql", held_cut)
    try:
        with serve(tracking_uri=uri) as server:
            page.goto(f"{server.url}/compare/?ids={','.join(run_ids)}")
            footer = page.locator("[data-testid=metric-chart][data-key=loss] [data-testid=chart-points]")
            footer.filter(has_text="sampled").wait_for(timeout=30_000)
            release.set()
            # no reload: the chart asks again by itself while a series is sampled
            page.wait_for_function(
                "() => { const f = document.querySelector('[data-testid=metric-chart][data-key=loss] "
                "[data-testid=chart-points]'); return f && !f.textContent.includes('sampled'); }",
                timeout=30_000,
            )
            assert f"of {RUNS * STEPS} points" in footer.inner_text()
    finally:
        release.set()
    metric_history.REFINER.wait()
