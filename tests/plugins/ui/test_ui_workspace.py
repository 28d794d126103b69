"""Issue 15, item 2: the runs page's charts workspace and its saved views.

One module-scoped sqlite store holds a 200-run sweep (3 params, 5 metrics x 1,000 steps, written
through MLflow's tables as test_ui_readable's sweep is) and one UI server reads it. API tests
check the saved views' routes (stored as experiment tags, name and size checked, writes guarded
as the other write routes are); browser tests (headless Chromium) open the workspace, group,
draw parallel coordinates and a scatter, reproduce a view from its URL and from a saved view,
and write screenshots to test-artifacts/ui/ (``workspace-*.png``).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import fresh_sqlite_uri
from mlflow import MlflowClient

from .test_ui_browser import problems as problems  # the fixture, shared
from .test_ui_readable import SWEEP_METRICS, _bulk_sweep
from .ui_helpers import TOKEN, UI, screenshot, serve

# The runs page shows 100 runs a page (lib/earlyFetch.ts): the workspace charts that page.
PAGE_RUNS = 100
FIRST_CHARTS_GOAL_S = 1.5
SLOW_S = 10.0
FILTER = "params.dropout = '0.2'"


@dataclass
class Sweep:
    uri: str
    experiment_id: str
    run_ids: list[str]
    # three runs, two of them named "train": a metric logged once, one logged over 20 epochs
    small_experiment: str = ""
    # one RUNNING run with 5 points of "loss"
    live_experiment: str = ""
    live_run: str = ""


@pytest.fixture(scope="module")
def sweep(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    from mltrack.storage.store import get_store

    folder = tmp_path_factory.mktemp("ui-workspace")
    uri = fresh_sqlite_uri(_sqlite_template, folder)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("ws-sweep", artifact_location=(folder / "artifacts").as_uri())
    start = int(time.time() * 1000) - 3_600_000
    store = get_store(uri)
    run_ids = _bulk_sweep(store, experiment_id, start)
    _tag_decades(store, run_ids)
    small = client.create_experiment("ws-small", artifact_location=(folder / "small").as_uri())
    for i, name in enumerate(("train", "train", "baseline")):
        run_id = client.create_run(small, run_name=name).info.run_id
        client.log_metric(run_id, "final_accuracy", 0.9 + i / 100, step=0)
        for epoch in range(20):
            client.log_metric(run_id, "epoch_loss", 1 / (1 + epoch * (i + 1)), step=epoch)
        client.set_terminated(run_id)
    live = client.create_experiment("ws-live", artifact_location=(folder / "live").as_uri())
    live_run = client.create_run(live, run_name="still-training").info.run_id
    for step in range(5):
        client.log_metric(live_run, "loss", 1 / (step + 1), step=step)
    return Sweep(uri, experiment_id, run_ids, small, live, live_run)


def _tag_decades(store: Any, run_ids: list[str]) -> None:
    """Tag each run with its learning rate's decade (the sweep's lr is 10 ** (-4 + 3 i / 200)): a tag
    to group by whose groups differ, written in one statement."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlTag

    rows = [
        {"key": "lr_decade", "value": f"1e{math.floor(-4 + 3 * i / len(run_ids))}", "run_uuid": run_id}
        for i, run_id in enumerate(run_ids)
    ]
    with store.client._tracking_client.store.engine.begin() as connection:
        connection.execute(sa.insert(SqlTag.__table__), rows)


@pytest.fixture(scope="module")
def ui(sweep: Sweep) -> Iterator[UI]:
    with serve(tracking_uri=sweep.uri, refresh_deployments=False) as server:
        yield UI(server.url)


def same_site(ui: UI) -> dict[str, str]:
    """What a browser sends from one of the UI's own pages."""
    return {"Origin": ui.url, "Sec-Fetch-Site": "same-origin"}


def put_view(
    ui: UI, experiment_id: str, name: str, view: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    path = f"/api/views/{quote(name, safe='')}?experiment_id={experiment_id}"
    return ui.get(path, method="PUT", body=view, headers=same_site(ui) if headers is None else headers)


# -- API: saved views --------------------------------------------------------------------------------


def test_a_view_is_saved_listed_and_deleted_as_an_experiment_tag(ui: UI, sweep: Sweep) -> None:
    view = {"tab": "charts", "group": "params.batch_size", "panels": ["val_loss", "train_loss"]}
    status, body = put_view(ui, sweep.experiment_id, "by batch", view)
    assert status == 200, body
    assert body == {"name": "by batch", "experiment_id": sweep.experiment_id, "view": view}
    tags = MlflowClient(tracking_uri=sweep.uri).get_experiment(sweep.experiment_id).tags
    assert json.loads(tags["mltrack.view.by batch"]) == view  # a tag, as mlflow ui shows it
    listed = ui.ok(f"/api/views?experiment_id={sweep.experiment_id}")
    assert {v["name"]: v["view"] for v in listed}["by batch"] == view
    status, body = put_view(ui, sweep.experiment_id, "by batch", {**view, "group": ""})  # saved again: replaced
    assert status == 200 and body["view"]["group"] == ""
    status, body = ui.get(
        f"/api/views/by%20batch?experiment_id={sweep.experiment_id}", method="DELETE", headers=same_site(ui)
    )
    assert status == 200, body
    assert "by batch" not in {v["name"] for v in body["views"]}
    assert "mltrack.view.by batch" not in MlflowClient(tracking_uri=sweep.uri).get_experiment(sweep.experiment_id).tags
    status, body = ui.get(
        f"/api/views/by%20batch?experiment_id={sweep.experiment_id}", method="DELETE", headers=same_site(ui)
    )
    assert status == 400 and body["error"].startswith("name 'by batch'"), body


@pytest.mark.parametrize("name", [" padded", "a;b", "<b>x</b>", "x" * 101])
def test_a_bad_view_name_is_refused_naming_the_field(ui: UI, sweep: Sweep, name: str) -> None:
    status, body = put_view(ui, sweep.experiment_id, name, {"tab": "charts"})
    assert status == 400, body
    assert body["error"].startswith("name "), body
    assert "letters, digits" in body["hint"]
    assert not any(k.startswith("mltrack.view.") and "x" * 101 in k for k in _tags(sweep))


def test_a_view_too_large_or_not_an_object_is_refused(ui: UI, sweep: Sweep) -> None:
    status, body = put_view(ui, sweep.experiment_id, "huge", {"selected": ["f" * 32] * 600})
    assert status == 413, body
    assert body["error"].startswith("view ") and "16000 bytes" in body["error"], body
    status, body = put_view(ui, sweep.experiment_id, "list", ["tab", "charts"])
    assert status == 400 and body["error"].startswith("view ") and "JSON object" in body["error"], body
    status, body = put_view(ui, "999999", "lost", {"tab": "charts"})
    assert status == 404, body
    assert not {"mltrack.view.huge", "mltrack.view.list"} & set(_tags(sweep))


def _tags(sweep: Sweep) -> dict[str, str]:
    return dict(MlflowClient(tracking_uri=sweep.uri).get_experiment(sweep.experiment_id).tags)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_a_view_written_from_another_origin_is_refused(ui: UI, sweep: Sweep, headers: dict[str, str]) -> None:
    status, body = put_view(ui, sweep.experiment_id, "csrf", {"tab": "charts"}, headers)
    assert status == 403, body
    assert "mltrack.view.csrf" not in _tags(sweep)
    path = f"/api/views/csrf?experiment_id={sweep.experiment_id}"
    assert ui.get(path, method="DELETE", headers=headers)[0] == 403


def test_with_auth_on_views_need_the_token(sweep: Sweep) -> None:
    with serve(tracking_uri=sweep.uri, host="0.0.0.0", auth_token=TOKEN) as server:
        guarded = UI(server.url)
        assert guarded.get(f"/api/views?experiment_id={sweep.experiment_id}")[0] == 401
        status, _ = put_view(guarded, sweep.experiment_id, "authed", {"tab": "charts"})
        assert status == 401
        assert "mltrack.view.authed" not in _tags(sweep)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, body = put_view(guarded, sweep.experiment_id, "authed", {"tab": "charts"}, bearer)
        assert status == 200, body
        # a token does not excuse a cross-origin page
        status, _ = put_view(guarded, sweep.experiment_id, "authed", {}, {**bearer, "Origin": "https://evil.example"})
        assert status == 403
        path = f"/api/views/authed?experiment_id={sweep.experiment_id}"
        assert guarded.get(path, method="DELETE", headers=bearer)[0] == 200


# -- the browser ------------------------------------------------------------------------------------

pytest_browser = pytest.mark.usefixtures("frontend_built")


def _open(page: Any, url: str, ready: str) -> float:
    """Seconds from navigation to ``ready`` being on the page."""
    page.set_viewport_size({"width": 1440, "height": 900})
    began = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ready, timeout=30_000)
    return time.perf_counter() - began


def _panel_keys(page: Any) -> list[str]:
    keys: list[str] = page.locator("[data-testid=workspace-panel]").evaluate_all("els => els.map(e => e.dataset.key)")
    return keys


DRAWN = "[data-testid=workspace-panel][data-mode=lines] canvas[data-rendered=true]"


def _charts(ui: UI, sweep: Sweep, extra: str = "") -> str:
    return f"{ui.url}/runs/?experiment={sweep.experiment_id}&tab=charts{extra}"


@pytest_browser
def test_the_workspace_draws_a_panel_per_metric_for_the_shown_runs(
    page: Any, ui: UI, sweep: Sweep, problems: list[str]
) -> None:
    _open(page, f"{ui.url}/runs/?experiment={sweep.experiment_id}", "[data-testid=run-row]")
    began = time.perf_counter()
    page.click("[data-testid=tab-charts]")  # one click from the table
    page.wait_for_selector(DRAWN, timeout=30_000)
    cold = time.perf_counter() - began  # the server's series cache is empty: every row is read
    page.wait_for_function(f"document.querySelectorAll('{DRAWN}').length === {len(SWEEP_METRICS)}", timeout=30_000)
    panels = page.locator("[data-testid=workspace-panel]")
    assert sorted(panels.evaluate_all("els => els.map(e => e.dataset.key)")) == sorted(SWEEP_METRICS)
    assert set(panels.evaluate_all("els => els.map(e => e.dataset.runs)")) == {str(PAGE_RUNS)}
    points = page.locator(f"{DRAWN}").first.get_attribute("data-points")
    assert points is not None and int(points) > PAGE_RUNS * 100  # every run drawn, each a curve
    assert "tab=charts" in page.url
    screenshot(page, "workspace-grid")

    # Selecting runs charts only those, from whichever page of the table they were ticked on.
    page.click("[data-testid=tab-table]")
    for box in page.locator("[data-testid=run-row] input[type=checkbox]").all()[:3]:
        box.check()
    top = page.locator("[data-testid=run-link]").first.inner_text()
    page.click("[data-testid=next-page]")
    page.wait_for_function(
        "top => document.querySelector('[data-testid=run-link]').innerText !== top", arg=top, timeout=30_000
    )
    page.locator("[data-testid=run-row] input[type=checkbox]").first.check()
    page.click("[data-testid=tab-charts]")
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=workspace-panel]')].every(e => e.dataset.runs === '4')",
        timeout=30_000,
    )
    assert page.locator("[data-testid=workspace-panel] >> nth=0").locator("[data-testid=legend-entry]").count() == 4
    assert "(selected)" in page.inner_text("[data-testid=workspace]")

    # The panel chooser hides and reorders panels.
    before = _panel_keys(page)
    page.click("[data-testid=choose-panels]")
    page.click("button[aria-label='hide grad_norm']")
    page.click("button[aria-label='move val_loss up']")
    expected = [k for k in before if k != "grad_norm"]
    i = expected.index("val_loss")
    expected[i - 1], expected[i] = expected[i], expected[i - 1]
    assert _panel_keys(page) == expected
    assert problems == []

    # Time to the first charts: the workspace opened from its URL (a new page: the front end's
    # files and the series are cached, as for a user opening it again), from navigation start.
    warm = []
    for _ in range(2):
        fresh = page.context.new_page()
        wall = _open(fresh, _charts(ui, sweep), DRAWN)
        mark = fresh.evaluate("performance.getEntriesByName('mltrack:workspace-first-chart')[0]?.startTime ?? null")
        warm.append((wall, None if mark is None else mark / 1000))
        fresh.close()
    print(
        f"\nworkspace first charts ({PAGE_RUNS} runs x {len(SWEEP_METRICS)} metrics x 1,000 steps): "
        f"from the Table tab, cold server cache {cold:.2f} s; opened from its URL "
        + ", ".join(f"{wall:.2f} s (in-page mark {mark:.2f} s)" if mark else f"{wall:.2f} s" for wall, mark in warm)
        + f" (goal <= {FIRST_CHARTS_GOAL_S} s)"
    )
    # The goal is checked by reading the figure (a shared CI machine's load swings it 3x); this
    # only catches a workspace that waits for every panel, or for 1,000-point series, before any.
    assert min(wall for wall, _ in warm) <= SLOW_S, warm


@pytest_browser
def test_a_metric_logged_once_is_bars_and_same_named_runs_are_told_apart(
    page: Any, ui: UI, sweep: Sweep, problems: list[str]
) -> None:
    _open(page, f"{ui.url}/runs/?experiment={sweep.small_experiment}&tab=charts", DRAWN)
    page.wait_for_selector("[data-testid=workspace-panel][data-key=final_accuracy][data-mode=bars]")
    assert page.locator("[data-key=final_accuracy] .bar-row").count() == 3
    legend = page.locator("[data-key=epoch_loss] [data-testid=legend-entry]").all_inner_texts()
    names = sorted(entry.lstrip("■ ").strip() for entry in legend)
    assert names[0] == "baseline" and all(re.fullmatch(r"train \([0-9a-f]{8}\)", n) for n in names[1:]), names
    assert problems == []


@pytest_browser
def test_the_panels_follow_a_running_run(page: Any, ui: UI, sweep: Sweep, problems: list[str]) -> None:
    _open(page, f"{ui.url}/runs/?experiment={sweep.live_experiment}&tab=charts", DRAWN)
    assert page.get_attribute(DRAWN, "data-points") == "5"
    assert page.locator("[data-testid=workspace-live]").count() == 1
    client = MlflowClient(tracking_uri=sweep.uri)
    for step in range(5, 12):
        client.log_metric(sweep.live_run, "loss", 1 / (step + 1), step=step)
    page.wait_for_selector(f"{DRAWN}[data-points='12']", timeout=15_000)
    assert problems == []


@pytest_browser
def test_grouping_draws_a_mean_and_band_per_group_labelled_with_its_run_count(
    page: Any, ui: UI, sweep: Sweep, problems: list[str]
) -> None:
    _open(page, _charts(ui, sweep), DRAWN)
    page.select_option("[data-testid=group-by]", "params.batch_size")
    page.wait_for_selector("[data-testid=workspace-panel][data-mode=groups] [data-testid=group-band]")
    first = page.locator("[data-testid=workspace-panel] >> nth=0")
    labels = first.locator("[data-testid=group-label]").all_inner_texts()
    # 4 batch sizes over the page's 100 runs, numerically ordered
    assert [label.lstrip("■ ").strip() for label in labels] == [
        f"batch_size={size} ({PAGE_RUNS // 4} runs)" for size in (16, 32, 64, 128)
    ]
    assert first.locator("[data-testid=group-band]").count() == 4
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=workspace-panel][data-mode=groups]').length === {len(SWEEP_METRICS)}"
    )
    assert "group=params.batch_size" in page.url
    # By a tag (the table's rows carry none: the workspace asks for it): groups that differ.
    page.select_option("[data-testid=group-by]", "tags.lr_decade")
    page.wait_for_selector("[data-testid=group-label]:has-text('lr_decade=1e-3')")
    labels = first.locator("[data-testid=group-label]").all_inner_texts()
    # the page holds the 100 newest runs, i = 100..199: lr from 10**-2.5 to 10**-1.015
    assert [label.lstrip("■ ").strip() for label in labels] == ["lr_decade=1e-3 (34 runs)", "lr_decade=1e-2 (66 runs)"]
    screenshot(page, "workspace-grouped")
    assert problems == []


@pytest_browser
def test_parallel_coordinates_and_scatter_draw_one_mark_per_run(
    page: Any, ui: UI, sweep: Sweep, problems: list[str]
) -> None:
    _open(page, _charts(ui, sweep, "&pcm=val_accuracy&sy=val_loss&sx=lr"), "[data-testid=parallel-line]")
    assert page.locator("[data-testid=parallel-line]").count() == PAGE_RUNS
    assert page.locator("[data-testid=parallel-axis]").count() == 3 + 1  # three params -> one metric
    assert page.locator("[data-testid=scatter-point]").count() == PAGE_RUNS
    assert page.get_attribute("[data-testid=scatter]", "data-axis") == "log"  # lr spans three decades
    page.locator("[data-testid=parallel-panel]").screenshot(path=str(_shot("workspace-parallel")))
    page.locator("[data-testid=scatter-panel]").screenshot(path=str(_shot("workspace-scatter")))
    # Fewer axes: the choice is in the URL too.
    page.click("[data-testid=parallel-panel] summary")
    page.locator("[data-testid=parallel-panel] label", has_text="dropout").locator("input").uncheck()
    assert page.locator("[data-testid=parallel-axis]").count() == 3
    assert "pc=" in page.url and "dropout" not in page.url.split("pc=")[1].split("&")[0]
    assert problems == []


def _shot(name: str) -> Path:
    from .ui_helpers import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


@pytest_browser
def test_a_copied_url_reproduces_the_view_in_a_new_page(page: Any, ui: UI, sweep: Sweep, problems: list[str]) -> None:
    # a filter (40 of the 200 runs) and the table's columns are part of the view too
    _open(page, _charts(ui, sweep, f"&filter={quote(FILTER)}&cols=metrics.val_loss,params.lr"), DRAWN)
    page.click("[data-testid=choose-panels]")
    page.click("button[aria-label='hide learning_rate']")
    page.click("button[aria-label='move val_accuracy up']")
    page.select_option("[data-testid=group-by]", "params.batch_size")
    page.wait_for_selector("[data-testid=group-band]")
    keys = _panel_keys(page)
    copied = page.url
    other = page.context.new_page()
    _open(other, copied, "[data-testid=workspace-panel][data-mode=groups] [data-testid=group-band]")
    assert _panel_keys(other) == keys
    assert other.locator("[data-testid=group-by]").input_value() == "params.batch_size"
    first = other.locator("[data-testid=workspace-panel] >> nth=0")
    assert first.get_attribute("data-runs") == "40"
    # dropout 0.2 is i % 5 == 2: i % 4 takes each value 10 times
    assert [t.lstrip("■ ").strip() for t in first.locator("[data-testid=group-label]").all_inner_texts()] == [
        f"batch_size={size} (10 runs)" for size in (16, 32, 64, 128)
    ]
    assert other.locator("[data-testid=runs-filter]").input_value() == FILTER
    other.click("[data-testid=tab-table]")
    headers = other.locator("[data-testid=runs-table] th").all_inner_texts()
    assert [h for h in headers if "." in h] == ["metrics.val_loss", "params.lr"]
    other.close()
    assert problems == []


@pytest_browser
def test_a_saved_view_is_opened_after_a_reload(page: Any, ui: UI, sweep: Sweep, problems: list[str]) -> None:
    _open(page, _charts(ui, sweep, "&group=params.batch_size&panels=val_loss,train_loss"), "[data-testid=group-band]")
    page.fill("input[aria-label='view name']", "batch bands")
    page.click("[data-testid=save-view]")
    page.wait_for_selector("[data-testid=open-view]:has-text('batch bands')")
    assert json.loads(_tags(sweep)["mltrack.view.batch bands"])["group"] == "params.batch_size"
    page.locator("[data-testid=saved-views]").screenshot(path=str(_shot("workspace-saved-views")))
    # Back to a plain table, reloaded: the view is listed and opens as it was saved.
    _open(page, f"{ui.url}/runs/?experiment={sweep.experiment_id}", "[data-testid=run-row]")
    page.reload()
    page.click("[data-testid=open-view]:has-text('batch bands')")
    page.wait_for_selector("[data-testid=workspace-panel][data-mode=groups] [data-testid=group-band]")
    assert _panel_keys(page) == ["val_loss", "train_loss"]
    page.click("button[aria-label='delete view batch bands']")
    page.wait_for_selector("text=deleted view")
    assert "mltrack.view.batch bands" not in _tags(sweep)
    assert problems == []


@pytest_browser
@pytest.mark.parametrize("panels", ["", "&panels=val_loss,train_loss"])
def test_the_first_panel_is_asked_for_by_the_pages_inline_script_and_used(
    page: Any, ui: UI, sweep: Sweep, problems: list[str], panels: str
) -> None:
    # The inline script asks for the first panel's histories as soon as the runs page is in (before
    # the app's scripts have run); the workspace takes that answer instead of asking again.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/metrics/history?" in r.url else None)
    _open(page, _charts(ui, sweep, panels), DRAWN)
    early = page.evaluate("Object.keys(window.__mltrackEarly ?? {}).filter(u => u.includes('metrics/history'))")
    assert len(early) == 1, early
    first_key = "val_loss" if panels else page.locator("[data-testid=workspace-panel]").first.get_attribute("data-key")
    assert f"keys={first_key}&" in early[0]
    assert page.evaluate("u => window.__mltrackEarly[u] === undefined", early[0])  # taken by the page
    assert sum(url.endswith(early[0]) for url in asked) == 1, asked
    assert problems == []
