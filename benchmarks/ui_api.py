"""The UI's API against MLflow on the same sqlite store, measured in one run.

Store: a fresh sqlite file with ``--runs`` runs (default 2,000) in one experiment, made with
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

The UI app runs in this process on a uvicorn thread bound to 127.0.0.1 (a real HTTP round trip).
The script prints PASS/MISS per target and always exits 0: it is a report.

Run:  .venv/bin/python benchmarks/ui_api.py [--runs 2000] [--steps 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
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
CHROMIUM = "/usr/bin/chromium"
EXPERIMENT = "ui-bench"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up: connection pools, imports, sqlite page cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def build_store(uri: str, runs: int, steps: int) -> tuple[str, str]:
    """Fill the store; returns (experiment id, id of the run with the long metric)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    import mltrack

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    started = time.perf_counter()
    now = int(time.time() * 1000)
    for i in range(runs):
        run = client.create_run(experiment_id, run_name=f"run-{i:05d}", start_time=now + i)
        params = [Param(f"param_{k}", str((i * 7 + k) % 13)) for k in range(10)]
        metrics = [Metric(f"metric_{k}", (i % 97) / (k + 1) + s, now, s) for k in range(5) for s in range(10)]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        client.set_terminated(run.info.run_id)
    print(f"  {runs} runs created with MlflowClient in {time.perf_counter() - started:.1f}s")
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
    return statistics.median(times)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mltrack-ui-bench-"))
    os.environ["MLTRACK_DATA_DIR"] = str(tmp / ".mltrack")
    os.chdir(tmp)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    try:
        print(f"Building the store ({uri})")
        experiment_id, long_run = build_store(uri, args.runs, args.steps)

        from mlflow.tracking import MlflowClient

        from mltrack_ui.app import create_app
        from mltrack_ui.background_server import BackgroundServer

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
        if view_s is not None:
            print(
                f"{'first page view (DOMContentLoaded -> table)':<44} {'':>9} {view_s:>10.3f}s {'':>7}  "
                f"< {TARGET_PAGE_VIEW_S}s  {verdict(view_s < TARGET_PAGE_VIEW_S)}"
            )
        print(
            f"\nshipped {len(shipped['values'])} of {shipped['total']} points; medians of {args.repeat} after a warm-up"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
