"""LLM traces in the UI: the routes over MLflow's trace API, and the run page's and the traces
page's views (list, span waterfall, inputs/outputs as text), fed by a real LangChain run through
MLTrack's plugin (fake chat model from langchain_core: the one seam). Recording traces through a
real ``mlflow server`` is tested with the plugin (tests/plugins/langchain); the UI reads them with
the same MlflowClient calls whatever the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_sqlite_uri

from .ui_helpers import TOKEN, UI, screenshot, serve

XSS = '<img src=x onerror="window.__xss=1">'

# Runs in a fresh interpreter, as a user's script would: autolog, one run, three invocations.
LANGCHAIN_RUN = r"""
import json, sys
import mltrack
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

xss = sys.argv[2]
usage = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
chat = GenericFakeChatModel(messages=iter([AIMessage(content="Owls say " + xss, usage_metadata=usage)]))
chain = ChatPromptTemplate.from_template("Tell me about {topic}") | chat | StrOutputParser()

@tool
def add(a: int, b: int) -> int:
    "Add two numbers."
    return a + b

def fail(_):
    raise ValueError("no owls today")

mltrack.autolog("langchain")
with mltrack.start_run(experiment="llm-traces", run_name="owl-chat") as run:
    chain.invoke({"topic": xss})
    add.invoke({"a": 2, "b": 3})
    try:
        (RunnableLambda(lambda x: x) | RunnableLambda(fail)).invoke("owls")
    except ValueError:
        pass
found = mltrack.get_run(run.run_id)
json.dump({"run_id": run.run_id, "experiment_id": found.info.experiment_id}, open(sys.argv[1], "w"))
"""


@dataclass
class TracedRun:
    uri: str
    run_id: str
    experiment_id: str


def langchain_run(uri: str, folder: Path) -> TracedRun:
    folder.mkdir(parents=True, exist_ok=True)
    answer = folder / "run.json"
    env = {**os.environ, "MLTRACK_TRACKING_URI": uri, "MLTRACK_DATA_DIR": str(folder / ".mltrack")}
    result = subprocess.run(
        [sys.executable, "-c", LANGCHAIN_RUN, str(answer), XSS],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    made = json.loads(answer.read_text())
    return TracedRun(uri, made["run_id"], made["experiment_id"])


@pytest.fixture(scope="module")
def traced(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> TracedRun:
    # the traces are made by mltrack-langchain, which `make test-isolated`'s UI venv does not hold
    pytest.importorskip("mltrack_langchain")
    folder = tmp_path_factory.mktemp("ui-traces")
    return langchain_run(fresh_sqlite_uri(_sqlite_template, folder), folder)


@pytest.fixture(scope="module")
def ui(traced: TracedRun) -> Iterator[UI]:
    with serve(tracking_uri=traced.uri) as server:
        yield UI(server.url)


def by_name(traces: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in traces}


def test_a_runs_traces_are_listed_with_status_latency_and_tokens(ui: UI, traced: TracedRun) -> None:
    listed = ui.ok(f"/api/traces?run_id={traced.run_id}")["traces"]
    traces = by_name(listed)
    assert set(traces) == {"RunnableSequence", "add"}  # the failing sequence is a RunnableSequence too
    assert len(listed) == 3
    assert [t["status"] for t in listed].count("ERROR") == 1
    chat = next(t for t in listed if t["tokens"])
    assert chat["tokens"] == {"input": 12, "output": 5, "total": 17}
    assert all(t["run_id"] == traced.run_id and t["latency_ms"] >= 0 for t in listed)
    assert ui.ok(f"/api/traces?experiment_ids={traced.experiment_id}")["traces"] == listed


def test_a_trace_has_its_span_tree_timings_and_text_inputs_outputs(ui: UI, traced: TracedRun) -> None:
    listed = ui.ok(f"/api/traces?run_id={traced.run_id}")["traces"]
    chat_trace = next(t for t in listed if t["tokens"])
    trace = ui.ok(f"/api/traces/{chat_trace['trace_id']}")
    spans = {s["name"]: s for s in trace["spans"]}
    assert list(spans) == ["RunnableSequence", "ChatPromptTemplate", "GenericFakeChatModel", "StrOutputParser"]
    root = spans["RunnableSequence"]
    assert root["parent_id"] is None and root["start_ms"] == 0
    assert {spans[n]["parent_id"] for n in list(spans)[1:]} == {root["span_id"]}
    model = spans["GenericFakeChatModel"]
    assert (model["type"], model["tokens"]["total"]) == ("CHAT_MODEL", 17)
    for span in spans.values():
        assert span["start_ms"] + span["duration_ms"] <= root["duration_ms"] + 1
    # inputs and outputs are text; the payload arrives exactly as the model said it
    assert root["outputs"] == "Owls say " + XSS
    assert json.loads(root["inputs"]) == {"topic": XSS}


def test_unknown_traces_and_bad_limits_are_refused_with_a_hint(ui: UI, traced: TracedRun) -> None:
    status, body = ui.get("/api/traces/tr-" + "0" * 32)
    assert status == 404, body
    status, body = ui.get("/api/traces?max_results=0")
    assert status == 400 and "max_results" in body["error"] and body["hint"]
    status, body = ui.get("/api/traces?run_id=" + "0" * 32)
    assert status == 404, body


def test_traces_need_the_token_when_auth_is_on(traced: TracedRun) -> None:
    with serve(tracking_uri=traced.uri, host="0.0.0.0", auth_token=TOKEN) as server:
        guarded = UI(server.url)
        assert guarded.get(f"/api/traces?run_id={traced.run_id}")[0] == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert len(guarded.ok(f"/api/traces?run_id={traced.run_id}", headers=headers)["traces"]) == 3


# -- the browser ----------------------------------------------------------------------------------


def test_the_run_page_shows_its_traces_as_a_waterfall_with_text_outputs(
    page: Any, ui: UI, traced: TracedRun, frontend_built: None
) -> None:
    page.goto(f"{ui.url}/run/?id={traced.run_id}")
    section = page.get_by_test_id("run-traces")
    section.get_by_test_id("trace-list").wait_for()
    section.locator("tr", has_text="RunnableSequence").filter(has_text="OK").click()
    waterfall = section.get_by_test_id("waterfall")
    model_row = waterfall.get_by_test_id("span-row").filter(has_text="GenericFakeChatModel")
    model_row.wait_for()
    assert waterfall.get_by_test_id("span-row").count() == 4
    model_row.click()
    outputs = section.get_by_test_id("span-outputs")
    assert '"content": "Owls say <img src=x onerror=' in outputs.inner_text()
    waterfall.get_by_test_id("span-row").filter(has_text="StrOutputParser").click()
    assert outputs.inner_text() == "Owls say " + XSS
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("window.__xss") is None
    section.scroll_into_view_if_needed()
    screenshot(page, "run-traces")


def test_the_traces_page_lists_an_experiments_traces(
    page: Any, ui: UI, traced: TracedRun, frontend_built: None
) -> None:
    page.goto(f"{ui.url}/")
    page.get_by_role("link", name="Traces").click()
    page.get_by_test_id("trace-experiment").select_option(traced.experiment_id)
    page.wait_for_url(f"**/traces/?experiment={traced.experiment_id}")
    table = page.get_by_test_id("trace-list")
    table.locator("tbody tr").nth(2).wait_for()
    assert table.locator("tbody tr").count() == 3
    table.locator("tr", has_text="ERROR").click()
    page.get_by_test_id("span-row").filter(has_text="fail").click()
    page.get_by_test_id("span-detail").get_by_text("ValueError").wait_for()
    assert "ValueError: no owls today" in page.get_by_test_id("span-detail").inner_text()
    screenshot(page, "traces-page")
