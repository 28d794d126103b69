"""The front end in real headless Chromium (Debian's, driven by Playwright).

Every page loads without console errors; the runs table filters and sorts; a 100k-step metric
is charted; a hostile run name stays text; a token-protected UI asks for the token. Screenshots
of each page go to test-artifacts/ui/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from .ui_helpers import TOKEN, UI, Seeded, screenshot

XSS_NAME = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.usefixtures("frontend_built")


@pytest.fixture
def problems(page: Any) -> Iterator[list[str]]:
    """Console errors, page errors and dialogs (an alert() would mean injected script ran)."""
    found: list[str] = []
    page.on("console", lambda message: found.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: found.append(f"page error: {error}"))

    def on_dialog(dialog: Any) -> None:
        found.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield found


def pages(seeded: Seeded) -> list[tuple[str, str, str]]:
    """(screenshot name, path, a selector that appears once the page has its data)."""
    return [
        ("dashboard", "/", "[data-testid=recent-runs] tr >> nth=1"),
        ("experiments", "/experiments/", "[data-testid=experiments-table]"),
        ("runs", f"/runs/?experiment={seeded.experiment_id}", "[data-testid=run-row]"),
        ("run", f"/run/?id={seeded.plain_run}", "[data-testid=run-name]"),
        (
            "compare",
            f"/compare/?ids={seeded.table_runs[0]},{seeded.table_runs[1]}",
            "[data-testid=metric-chart] canvas[data-rendered=true]",
        ),
        ("models", "/models/", "[data-testid=models-table]"),
        ("model", "/model/?name=churn", "[data-testid=versions-table]"),
        ("deployments", "/deployments/", "text=No deployments yet."),
        ("plugins", "/plugins/", "[data-testid=plugins-table] >> text=mltrack-ui"),
    ]


@pytest.mark.parametrize(
    "name", ["dashboard", "experiments", "runs", "run", "compare", "models", "model", "deployments", "plugins"]
)
def test_each_page_loads_without_console_errors(
    page: Any, ui: UI, seeded: Seeded, problems: list[str], name: str
) -> None:
    [(_, path, ready)] = [p for p in pages(seeded) if p[0] == name]
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(ui.url + path)
    page.wait_for_selector(ready, timeout=30_000)
    page.wait_for_load_state("networkidle")
    screenshot(page, name)
    assert problems == []


def run_names(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("[data-testid=run-row] [data-testid=run-link]").all_inner_texts()]


def test_the_runs_table_filters_and_sorts(page: Any, ui: UI, seeded: Seeded, problems: list[str]) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url) if "/api/runs?" in request.url else None)
    page.goto(f"{ui.url}/runs/?experiment={seeded.experiment_id}")
    page.wait_for_selector("[data-testid=run-row]")
    assert len(run_names(page)) == len(seeded.table_runs) + 2
    # The inline script's early request is the one the table used: no second fetch of page one.
    assert len(requested) == 1, requested

    page.fill("[data-testid=runs-filter]", "params.lr = '0.1'")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 4")
    assert sorted(run_names(page)) == ["table-00", "table-03", "table-06", "table-09"]

    header = page.locator("th", has_text="metrics.accuracy")
    header.click()  # descending first
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-row] [data-testid=run-link]').textContent === 'table-09'"
    )
    assert run_names(page) == ["table-09", "table-06", "table-03", "table-00"]
    header.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-row] [data-testid=run-link]').textContent === 'table-00'"
    )
    assert run_names(page) == ["table-00", "table-03", "table-06", "table-09"]
    screenshot(page, "runs-filtered-sorted")
    assert problems == []


def test_columns_can_be_chosen_and_runs_selected_for_comparison(
    page: Any, ui: UI, seeded: Seeded, problems: list[str]
) -> None:
    page.goto(
        f"{ui.url}/runs/?experiment={seeded.experiment_id}&filter={quote(chr(39).join(['params.lr = ', '0.01', '']))}"
    )
    page.wait_for_selector("[data-testid=run-row]")
    page.click("[data-testid=choose-columns]")
    page.locator("[data-testid=column-chooser] label", has_text="tags.team").locator("input").check()
    page.wait_for_selector("th >> text=tags.team")

    page.locator("[data-testid=run-row] input[type=checkbox]").nth(0).check()
    page.locator("[data-testid=run-row] input[type=checkbox]").nth(1).check()
    page.click("[data-testid=compare-selected]")
    page.wait_for_selector("[data-testid=params-diff]")
    assert page.locator("[data-testid=params-diff] thead th").count() == 3  # "param" + two runs
    page.wait_for_selector("[data-testid=metric-chart] canvas[data-rendered=true]")
    screenshot(page, "compare-selected")
    assert problems == []


def test_a_100k_step_metric_is_charted_and_zooms(page: Any, ui: UI, seeded: Seeded, problems: list[str]) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{ui.url}/run/?id={seeded.long_run}")
    page.click("text=charts")
    canvas = page.wait_for_selector("[data-testid=chart-canvas][data-rendered=true]", timeout=30_000)
    points = page.inner_text("[data-testid=chart-points]")
    shipped, total = int(points.split()[0]), int(points.split()[2])
    assert total == 100_000 and 0 < shipped <= 1000
    # Something was drawn: the canvas has coloured (non-grey) pixels.
    coloured = page.evaluate(
        """(canvas) => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
             let n = 0; for (let i = 0; i < d.length; i += 4)
               if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
             return n; }""",
        canvas,
    )
    assert coloured > 100
    screenshot(page, "run-chart-100k")

    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 140, box["y"] + 100, steps=4)
    page.mouse.up()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=chart-points]').textContent.endsWith('of 100000 points')"
    )
    zoomed_total = int(page.inner_text("[data-testid=chart-points]").split()[2])
    assert 0 < zoomed_total < 100_000
    screenshot(page, "run-chart-zoomed")
    assert problems == []


def test_a_hostile_run_name_is_shown_as_text(page: Any, ui: UI, seeded: Seeded, problems: list[str]) -> None:
    for path, where in (
        (f"/runs/?experiment={seeded.experiment_id}", "[data-testid=run-row]"),
        (f"/run/?id={seeded.plain_run}", "[data-testid=run-name]"),
        ("/", "[data-testid=recent-runs] tr >> nth=1"),
    ):
        page.goto(ui.url + path)
        page.wait_for_selector(where)
        assert page.get_by_text(XSS_NAME, exact=True).first.is_visible()
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("main script").count() == 0
        if path.startswith("/run/"):
            assert page.get_by_text("<script>alert(2)</script>", exact=True).first.is_visible()  # a tag, as text
            screenshot(page, "run-hostile-name")
    assert problems == []


def test_a_token_protected_ui_asks_for_the_token(
    page: Any, ui_with_token: UI, seeded: Seeded, problems: list[str]
) -> None:
    page.goto(f"{ui_with_token.url}/runs/?experiment={seeded.experiment_id}")
    page.wait_for_selector("[data-testid=login-form]")
    assert page.locator("[data-testid=run-row]").count() == 0
    screenshot(page, "login")
    page.fill("input[type=password]", "wrong-token-123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Wrong token.")

    page.fill("input[type=password]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=run-row]", timeout=30_000)
    # The only console errors allowed are the browser's own reports of the refused (401) requests.
    assert all("401" in problem for problem in problems), problems
