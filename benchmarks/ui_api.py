"""The UI's API against MLflow on the same sqlite store, measured in one run.

Store: a fresh sqlite file (or, with ``--postgres``, a throwaway PostgreSQL cluster) with
``--runs`` runs (default 2,000) in one experiment, made with
``MlflowClient`` (10 params and 5 metrics of 10 steps each per run), plus one run holding a
``--steps``-step metric (default 100,000) logged with ``mltrack.log_metric``.

What is measured (median of ``--repeat`` timings after one warm-up call each, wall clock):

* **runs table**: ``GET /api/runs?page_size=100`` over HTTP (the first page with params and
  latest metrics, the total count and the column keys) against MLflow's
  ``MlflowClient.search_runs`` of every run of the experiment (paged by 1,000, as MLflow must).
  Target: <= 0.1x.
* **metric history**: ``GET /api/metrics/history?max_points=2000`` of the 100k-step metric
  against ``MlflowClient.get_metric_history`` of it. Target: <= 0.1x.
* **first page view** (only where Playwright and Chromium are installed): headless Chromium opens
  the runs page of the experiment; the time from DOMContentLoaded to the table's first render
  (the page's ``performance.mark("mltrack:runs-table-rendered")``). Target: < 1 s.
* **runs table at scale** (``--bulk``, e.g. ``--runs 20000 --bulk``): the runs are written
  straight into MLflow's tables (MlflowClient would take an hour for 20,000), and the first page
  must also come back in <= 0.1 s outright.
* **workspace first charts** (``--bulk`` only): the charts workspace's first request, one
  ``GET /api/metrics/history`` of 5 metrics of 50 runs of the ``--runs`` store at 300 points per
  series, on a cold cache (its first call), against ``MlflowClient.get_metric_history`` of each
  of the 250 series. Target: <= 1.5 s.
* **compare of many runs** (``--compare-runs``, default 100, each with a ``--compare-steps``
  metric, default 100,000, written straight into MLflow's tables): one
  ``GET /api/metrics/history`` of every run's ``loss`` at the compare page's point budget (400 per
  series for 100 runs) against ``MlflowClient.get_metric_history`` of each. Target: the first
  call (a cold cache) <= 1 s; it is sampled by index seeks (first and last points exact). Then
  the background refinement is waited for (its time is printed) and the cached call must keep
  every series' first, last, lowest and highest point. ``--compare-runs 0`` skips it.

The UI app runs in this process on a uvicorn thread bound to 127.0.0.1 (a real HTTP round trip).
The script prints PASS/MISS per target and always exits 0: it is a report.

Run:  .venv/bin/python benchmarks/ui_api.py [--runs 2000] [--steps 100000] [--repeat 5] [--bulk]
                                            [--compare-runs 100] [--compare-steps 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.1
TARGET_PAGE_VIEW_S = 1.0
TARGET_FIRST_PAGE_S = 0.1
TARGET_COMPARE_S = 1.0
TARGET_WORKSPACE_S = 1.5
WORKSPACE_RUNS = 50
WORKSPACE_KEYS = 5
WORKSPACE_POINTS = 300
COMPARE_EXPERIMENT = "ui-bench-compare"
CHROMIUM = "/usr/bin/chromium"
EXPERIMENT = "ui-bench"


def once(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up: connection pools, imports, sqlite page cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bulk_runs(uri: str, experiment_id: str, runs: int, params: int, metrics: int, steps: int, prefix: str) -> list[str]:
    """``runs`` finished runs written straight into MLflow's tables (one executemany per table)."""
    from uuid import uuid4

    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag
    from mlflow.tracking import MlflowClient

    backend = MlflowClient(tracking_uri=uri)._tracking_client.store
    root = backend.get_experiment(experiment_id).artifact_location
    now = int(time.time() * 1000) - runs - 10_000  # before the long-metric run, which then leads page one
    ids = [uuid4().hex for _ in range(runs)]
    run_rows = [
        {
            "run_uuid": run_id,
            "name": f"{prefix}-{i:05d}",
            "source_type": "LOCAL",
            "source_name": "",
            "entry_point_name": "",
            "user_id": "bench",
            "status": "FINISHED",
            "start_time": now + i,
            "end_time": now + i + 1000,
            "source_version": "",
            "lifecycle_stage": "active",
            "artifact_uri": f"{root}/{run_id}/artifacts",
            "experiment_id": int(experiment_id),
        }
        for i, run_id in enumerate(ids)
    ]
    param_rows = [
        {"key": f"param_{k}", "value": str((i * 7 + k) % 13), "run_uuid": run_id}
        for i, run_id in enumerate(ids)
        for k in range(params)
    ]
    tag_rows = [{"key": "mlflow.runName", "value": r["name"], "run_uuid": r["run_uuid"]} for r in run_rows]

    def value(i: int, k: int, step: int) -> float:
        return (i % 97) / (k + 1) + 1.0 / (step + 1) + (5.0 if step == steps // 3 else 0.0)

    latest = [
        {
            "key": f"metric_{k}" if metrics > 1 else "loss",
            "value": value(i, k, steps - 1),
            "timestamp": now,
            "step": steps - 1,
            "is_nan": False,
            "run_uuid": run_id,
        }
        for i, run_id in enumerate(ids)
        for k in range(metrics)
    ]

    def metric_rows() -> Any:
        for i, run_id in enumerate(ids):
            for k in range(metrics):
                key = f"metric_{k}" if metrics > 1 else "loss"
                for step in range(steps):
                    yield key, value(i, k, step), now + step, run_id, step, 0

    with backend.engine.begin() as connection:
        connection.execute(sa.insert(SqlRun.__table__), run_rows)
        if param_rows:
            connection.execute(sa.insert(SqlParam.__table__), param_rows)
        connection.execute(sa.insert(SqlTag.__table__), tag_rows)
        connection.execute(sa.insert(SqlLatestMetric.__table__), latest)
        # DB-API executemany: SQLAlchemy's per-row work would dominate millions of points.
        cursor = connection.connection.cursor()
        if backend.engine.dialect.name == "sqlite":
            cursor.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                metric_rows(),
            )
        else:  # PostgreSQL: COPY, a million rows at a time (executemany is a round trip a row)
            rows = metric_rows()
            while True:
                chunk = io.StringIO()
                chunk.writelines(
                    f"{k}\t{v!r}\t{t}\t{r}\t{s}\tf\n" for k, v, t, r, s, _ in itertools.islice(rows, 1_000_000)
                )
                if not chunk.tell():
                    break
                chunk.seek(0)
                cursor.copy_from(chunk, "metrics", columns=("key", "value", "timestamp", "run_uuid", "step", "is_nan"))
    return ids


def build_store(uri: str, runs: int, steps: int, bulk: bool = False) -> tuple[str, str]:
    """Fill the store; returns (experiment id, id of the run with the long metric)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    import mltrack

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    started = time.perf_counter()
    now = int(time.time() * 1000)
    if bulk:
        bulk_runs(uri, experiment_id, runs, params=10, metrics=5, steps=10, prefix="run")
    for i in range(0 if bulk else runs):
        created = client.create_run(experiment_id, run_name=f"run-{i:05d}", start_time=now + i)
        params = [Param(f"param_{k}", str((i * 7 + k) % 13)) for k in range(10)]
        metrics = [Metric(f"metric_{k}", (i % 97) / (k + 1) + s, now, s) for k in range(5) for s in range(10)]
        client.log_batch(created.info.run_id, metrics=metrics, params=params)
        client.set_terminated(created.info.run_id)
    how = "in bulk through SQL" if bulk else "with MlflowClient"
    print(f"  {runs} runs created {how} in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    mltrack.configure(tracking_uri=uri)
    with mltrack.start_run("long-metric", experiment=EXPERIMENT) as run:
        for step in range(steps):
            mltrack.log_metric("loss", 1.0 / (step + 1) + (5.0 if step == steps // 3 else 0.0), step=step)
    print(f"  {steps}-step metric logged with mltrack in {time.perf_counter() - started:.1f}s")
    return experiment_id, run.run_id


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def page_view(base_url: str, experiment_id: str, repeat: int) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("  first page view: skipped (Playwright is not installed)")
        return None
    from mltrack_ui.app import static_dir

    if static_dir() is None:
        print("  first page view: skipped (the front end is not built: make ui-build)")
        return None
    if not Path(CHROMIUM).exists():
        print(f"  first page view: skipped ({CHROMIUM} is not installed)")
        return None
    script = """() => {
        const mark = performance.getEntriesByName("mltrack:runs-table-rendered")[0];
        const nav = performance.getEntriesByType("navigation")[0];
        return mark && nav ? (mark.startTime - nav.domContentLoadedEventStart) / 1000 : null;
    }"""
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for i in range(repeat + 1):
                page = browser.new_page()
                page.goto(f"{base_url}/runs/?experiment={experiment_id}")
                page.wait_for_function(
                    "() => performance.getEntriesByName('mltrack:runs-table-rendered').length > 0", timeout=30_000
                )
                if i:  # the first view warms the server and the browser's cache
                    times.append(page.evaluate(script))
                page.close()
        finally:
            browser.close()
    return float(statistics.median(times))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bulk", action="store_true", help="write the --runs runs straight into MLflow's tables")
    parser.add_argument("--compare-runs", type=int, default=100)
    parser.add_argument("--compare-steps", type=int, default=100_000)
    parser.add_argument(
        "--mlflow-compare-runs",
        type=int,
        default=0,
        help="time MLflow's side of the compare on this many runs and scale it up (0: every run, which takes minutes)",
    )
    parser.add_argument(
        "--exact-first-open",
        action="store_true",
        help="also time the compare's first open without sampling (every row read), in this process",
    )
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster instead of sqlite")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mltrack-ui-bench-"))
    os.environ["MLTRACK_DATA_DIR"] = str(tmp / ".mltrack")
    os.chdir(tmp)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    postgres = None
    if args.postgres:
        from mltrack.testing.servers import PostgresServer

        os.chmod(tmp, 0o755)  # PostgreSQL may run as the postgres user
        postgres = PostgresServer(tmp / "cluster").start()
        uri = postgres.uri
    try:
        print(f"Building the store ({uri})")
        experiment_id, long_run = build_store(uri, args.runs, args.steps, bulk=args.bulk)
        compare_ids: list[str] = []
        if args.compare_runs:
            from mlflow.tracking import MlflowClient

            started = time.perf_counter()
            compare_experiment = MlflowClient(tracking_uri=uri).create_experiment(COMPARE_EXPERIMENT)
            compare_ids = bulk_runs(
                uri, compare_experiment, args.compare_runs, params=3, metrics=1, steps=args.compare_steps, prefix="cmp"
            )
            print(
                f"  {args.compare_runs} runs x {args.compare_steps}-step loss written in bulk in "
                f"{time.perf_counter() - started:.1f}s"
            )

        from mlflow.tracking import MlflowClient

        from mltrack_ui.app import create_app
        from mltrack_ui.background_server import BackgroundServer
        from mltrack_ui.metric_history import REFINER

        client = MlflowClient(tracking_uri=uri)

        def mlflow_search_all() -> int:
            found, token = 0, None
            while True:
                page = client.search_runs([experiment_id], max_results=1000, page_token=token)
                found += len(page)
                token = page.token
                if not token:
                    return found

        with BackgroundServer(create_app(tracking_uri=uri)) as server:
            runs_url = f"{server.url}/api/runs?experiment_ids={experiment_id}&page_size=100"
            history_url = f"{server.url}/api/metrics/history?run_ids={long_run}&keys=loss&max_points=2000"

            mlflow_search_s, found = timed(mlflow_search_all, args.repeat)
            ui_page_s, page = timed(lambda: get_json(runs_url), args.repeat)
            assert found == args.runs + 1 and len(page["runs"]) == 100 and page["total"] == found
            assert all(len(r["params"]) == 10 and len(r["metrics"]) == 5 for r in page["runs"][1:])

            mlflow_history_s, history = timed(lambda: client.get_metric_history(long_run, "loss"), args.repeat)
            ui_history_s, series = timed(lambda: get_json(history_url), args.repeat)
            [shipped] = series["series"]
            assert len(history) == args.steps and shipped["total"] == args.steps
            assert len(shipped["values"]) <= 2000 and max(shipped["values"]) > 5.0  # the spike survived

            view_s = page_view(server.url, experiment_id, args.repeat)

            workspace: tuple[float, float, float] | None = None
            if args.bulk:
                ws_runs = [r["run_id"] for r in page["runs"][1 : WORKSPACE_RUNS + 1]]
                ws_keys = [f"metric_{k}" for k in range(WORKSPACE_KEYS)]
                workspace_url = (
                    f"{server.url}/api/metrics/history?run_ids={','.join(ws_runs)}&keys={','.join(ws_keys)}"
                    f"&max_points={WORKSPACE_POINTS}"
                )
                ws_first_s, ws_answer = once(lambda: get_json(workspace_url))
                ws_warm_s, _ = timed(lambda: get_json(workspace_url), args.repeat)
                mlflow_ws_s, ws_points = timed(
                    lambda: sum(len(client.get_metric_history(r, k)) for r in ws_runs for k in ws_keys), args.repeat
                )
                assert len(ws_answer["series"]) == len(ws_runs) * len(ws_keys) == ws_points // 10
                assert all(one["total"] == 10 and len(one["steps"]) == 10 for one in ws_answer["series"])
                workspace = (mlflow_ws_s, ws_first_s, ws_warm_s)

            compare: tuple[float, float, int, float, float, float, int] | None = None
            if compare_ids:
                budget = max(200, min(1000, 40_000 // len(compare_ids)))  # the compare page's pointBudget
                compare_url = (
                    f"{server.url}/api/metrics/history?run_ids={','.join(compare_ids)}&keys=loss&max_points={budget}"
                )

                mlflow_ids = compare_ids[: args.mlflow_compare_runs or None]

                def mlflow_compare() -> int:
                    return sum(len(client.get_metric_history(run_id, "loss")) for run_id in mlflow_ids)

                # MLflow's side once (minutes at 100 x 100k): its median would not change the verdict.
                mlflow_compare_s, points = once(mlflow_compare)
                mlflow_compare_s *= len(compare_ids) / len(mlflow_ids)  # scaled up where it timed fewer runs
                ui_first_s, first = once(lambda: get_json(compare_url))
                sampled = sum(bool(one.get("sampled")) for one in first["series"])
                for one in first["series"]:
                    assert len(one["steps"]) <= budget
                    assert one["steps"][0] == 0 and one["steps"][-1] == args.compare_steps - 1
                refine_s, _ = once(REFINER.wait)  # the exact cuts, in the background after the first call
                exact_s = 0.0
                if args.exact_first_open:
                    from mltrack.extend import MlflowStore
                    from mltrack_ui import metric_history

                    metric_history.CACHE.clear()
                    metric_history.SAMPLE_ROWS = 1 << 62  # no sampling: every row read, as before it
                    exact_s, _ = once(
                        lambda: metric_history.metric_histories(
                            MlflowStore(uri), metric_history.HistoryQuery(compare_ids, ["loss"], max_points=budget)
                        )
                    )
                ui_compare_s, answer = timed(lambda: get_json(compare_url), args.repeat)
                assert points == len(mlflow_ids) * args.compare_steps
                for one in answer["series"]:
                    assert not one.get("sampled")
                    assert one["total"] == args.compare_steps and len(one["steps"]) <= budget
                    assert one["steps"][0] == 0 and one["steps"][-1] == args.compare_steps - 1
                    assert max(one["values"]) > 5.0  # each run's spike survived
                compare = (mlflow_compare_s, ui_compare_s, budget, ui_first_s, refine_s, exact_s, sampled)

        page_ratio = ui_page_s / mlflow_search_s
        history_ratio = ui_history_s / mlflow_history_s
        print()
        print(f"{'measure':<44} {'MLflow':>9} {'mltrack-ui':>11} {'ratio':>7}  target")
        print(
            f"{'runs table, first page of ' + str(args.runs + 1) + ' runs':<44} {mlflow_search_s:>8.3f}s "
            f"{ui_page_s:>10.3f}s {page_ratio:>7.3f}  <= {TARGET_RATIO}x  {verdict(page_ratio <= TARGET_RATIO)}"
        )
        print(
            f"{'history of a ' + str(args.steps) + '-step metric (<=2000 pts)':<44} {mlflow_history_s:>8.3f}s "
            f"{ui_history_s:>10.3f}s {history_ratio:>7.3f}  <= {TARGET_RATIO}x  "
            f"{verdict(history_ratio <= TARGET_RATIO)}"
        )
        print(
            f"{'runs table, first page (absolute)':<44} {'':>9} {ui_page_s:>10.3f}s {'':>7}  "
            f"<= {TARGET_FIRST_PAGE_S}s  {verdict(ui_page_s <= TARGET_FIRST_PAGE_S)}"
        )
        if workspace is not None:
            mlflow_ws_s, ws_first_s, ws_warm_s = workspace
            label = f"workspace first charts ({WORKSPACE_RUNS} runs x {WORKSPACE_KEYS} keys)"
            print(
                f"{label:<44} {mlflow_ws_s:>8.3f}s {ws_first_s:>10.3f}s {ws_first_s / mlflow_ws_s:>7.3f}  "
                f"<= {TARGET_WORKSPACE_S}s  {verdict(ws_first_s <= TARGET_WORKSPACE_S)}"
            )
            print(f"{'  the same, again (cached)':<44} {'':>9} {ws_warm_s:>10.3f}s")
        if compare is not None:
            mlflow_compare_s, ui_compare_s, budget, ui_first_s, refine_s, exact_s, sampled = compare
            label = f"compare {len(compare_ids)} runs x {args.compare_steps} steps (<={budget}/run)"
            # The goal is the first open: a reopen is served from the cut-series cache.
            print(
                f"{label:<44} {mlflow_compare_s:>8.3f}s {ui_first_s:>10.3f}s "
                f"{ui_first_s / mlflow_compare_s:>7.3f}  <= {TARGET_COMPARE_S}s  "
                f"{verdict(ui_first_s <= TARGET_COMPARE_S)}"
            )
            print(f"{f'  ({sampled} sampled; exact cuts refined in)':<44} {'':>9} {refine_s:>10.3f}s")
            print(f"{'  the same, again (cached, exact)':<44} {'':>9} {ui_compare_s:>10.3f}s")
            if exact_s:
                print(f"{'  first open unsampled (every row, in-process)':<44} {'':>9} {exact_s:>10.3f}s")
        if view_s is not None:
            print(
                f"{'first page view (DOMContentLoaded -> table)':<44} {'':>9} {view_s:>10.3f}s {'':>7}  "
                f"< {TARGET_PAGE_VIEW_S}s  {verdict(view_s < TARGET_PAGE_VIEW_S)}"
            )
        print(
            f"\nshipped {len(shipped['values'])} of {shipped['total']} points; medians of {args.repeat} after a warm-up"
        )
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
