"""Tracing: every LangChain call of a run recorded as a trace artifact and aggregate metrics."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fake_chains import add, chat_chain
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

import mltrack
from mltrack_langchain import TRACE_ARTIFACT, MLTrackCallbackHandler, flush_traces


@pytest.fixture(autouse=True)
def _no_mlflow_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the metrics and the JSON-lines export; MLflow traces (about 1 s per
    test on a loaded machine) have their own tests in test_langchain_mlflow_traces.py."""
    monkeypatch.setenv("MLTRACK_PLUGINS__LANGCHAIN__MLFLOW_TRACES", "false")


@pytest.fixture
def autolog() -> Iterator[None]:
    mltrack.autolog("langchain")
    yield
    mltrack.autolog("langchain", disable=True)


def traces(uri: str, run_id: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The run's trace artifact, one dict per recorded call ([] if there is none)."""
    names = [a.path for a in mlflow.MlflowClient(uri).list_artifacts(run_id, "traces")]
    if TRACE_ARTIFACT not in names:
        return []
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=TRACE_ARTIFACT, dst_path=str(tmp_path / run_id), tracking_uri=uri
    )
    return [json.loads(line) for line in Path(local).read_text().splitlines()]


def langchain_metrics(run_id: str) -> dict[str, float]:
    return {k: v for k, v in mltrack.get_run(run_id).data.metrics.items() if k.startswith("langchain.")}


def test_a_chain_invocation_records_the_chain_its_steps_latencies_and_tokens(
    sqlite_uri: str, tmp_path: Path, autolog: None
) -> None:
    with mltrack.start_run() as run:
        assert chat_chain("Owls hoot.").invoke({"topic": "owls"}) == "Owls hoot."
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert [(c["name"], c["run_type"]) for c in calls] == [
        ("RunnableSequence", "chain"),
        ("ChatPromptTemplate", "prompt"),
        ("GenericFakeChatModel", "chat_model"),
        ("StrOutputParser", "parser"),
    ]
    root, prompt, chat, parser = calls
    assert root["parent_id"] is None
    assert {c["parent_id"] for c in (prompt, chat, parser)} == {root["span_id"]}
    assert {c["trace_id"] for c in calls} == {root["span_id"]}
    assert all(c["status"] == "ok" and c["latency_s"] >= 0 and c["end_time_ms"] >= c["start_time_ms"] for c in calls)
    assert root["latency_s"] >= chat["latency_s"]
    assert chat["tokens"] == {"input": 7, "output": 3, "total": 10}
    assert root["inputs"] == {"topic": "owls"}
    assert chat["inputs"] == {"messages": [[{"type": "human", "content": "Tell me about owls"}]]}
    assert chat["outputs"] == [{"type": "ai", "content": "Owls hoot."}]
    assert root["outputs"] == "Owls hoot."
    metrics = langchain_metrics(run.run_id)
    assert metrics["langchain.latency_s"] == pytest.approx(root["latency_s"])
    assert {k: v for k, v in metrics.items() if k != "langchain.latency_s"} == {
        "langchain.calls": 4,
        "langchain.llm_calls": 1,
        "langchain.tool_calls": 0,
        "langchain.errors": 0,
        "langchain.tokens.input": 7,
        "langchain.tokens.output": 3,
        "langchain.tokens.total": 10,
    }


def test_tool_calls_are_recorded_on_their_own_and_inside_a_chain(
    sqlite_uri: str, tmp_path: Path, autolog: None
) -> None:
    with mltrack.start_run() as run:
        assert add.invoke({"a": 1, "b": 2}) == 3
        assert (RunnableLambda(lambda n: {"a": n, "b": 10}) | add).invoke(5) == 15
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    tools = [c for c in calls if c["run_type"] == "tool"]
    assert [(t["name"], t["inputs"], t["outputs"]) for t in tools] == [
        ("add", {"a": 1, "b": 2}, 3),
        ("add", {"a": 5, "b": 10}, 15),
    ]
    assert tools[0]["parent_id"] is None
    sequence = next(c for c in calls if c["name"] == "RunnableSequence")
    assert tools[1]["parent_id"] == sequence["span_id"]
    client = mlflow.MlflowClient(sqlite_uri)
    history = client.get_metric_history(run.run_id, "langchain.tool_calls")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 1.0)]


def test_each_top_level_invocation_is_one_step(sqlite_uri: str, tmp_path: Path, autolog: None) -> None:
    chain = chat_chain("one", "two", "three")
    with mltrack.start_run() as run:
        chain.invoke({"topic": "a"})
        chain.invoke({"topic": "b"})
        chain.invoke({"topic": "c"})
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert [c["step"] for c in calls if c["parent_id"] is None] == [0, 1, 2]
    history = mlflow.MlflowClient(sqlite_uri).get_metric_history(run.run_id, "langchain.tokens.total")
    assert sorted((m.step, m.value) for m in history) == [(0, 10.0), (1, 10.0), (2, 10.0)]


def test_a_batch_records_one_trace_per_input_from_langchains_worker_threads(
    sqlite_uri: str, tmp_path: Path, autolog: None
) -> None:
    chain = ChatPromptTemplate.from_template("Tell me about {topic}") | ParrotFakeChatModel() | StrOutputParser()
    topics = [{"topic": f"t{i}"} for i in range(6)]
    with mltrack.start_run() as run:
        chain.batch(topics, config={"max_concurrency": 3})
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    roots = [c for c in calls if c["parent_id"] is None]
    assert sorted(c["step"] for c in roots) == list(range(6))
    assert sorted(c["inputs"]["topic"] for c in roots) == [t["topic"] for t in topics]
    assert len(calls) == 6 * 4
    by_trace: dict[str, int] = {}
    for call in calls:
        by_trace[call["trace_id"]] = by_trace.get(call["trace_id"], 0) + 1
    assert set(by_trace.values()) == {4}


def test_invocations_from_threads_the_user_starts_are_recorded(sqlite_uri: str, tmp_path: Path, autolog: None) -> None:
    answers: list[str] = []
    with mltrack.start_run() as run:
        worker = threading.Thread(target=lambda: answers.append(chat_chain("threaded").invoke({"topic": "owls"})))
        worker.start()
        worker.join()
    assert answers == ["threaded"]
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert [c["run_type"] for c in calls] == ["chain", "prompt", "chat_model", "parser"]


def test_async_invocations_are_recorded(sqlite_uri: str, tmp_path: Path, autolog: None) -> None:
    with mltrack.start_run() as run:
        assert asyncio.run(chat_chain("async owls").ainvoke({"topic": "owls"})) == "async owls"
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert [c["run_type"] for c in calls] == ["chain", "prompt", "chat_model", "parser"]
    assert calls[2]["tokens"]["total"] == 10


def test_errors_are_recorded_and_still_raised(sqlite_uri: str, tmp_path: Path, autolog: None) -> None:
    def fail(_: Any) -> str:
        raise ValueError("no owls today")

    with mltrack.start_run() as run, pytest.raises(ValueError, match="no owls today"):
        (ChatPromptTemplate.from_template("{topic}") | RunnableLambda(fail)).invoke({"topic": "owls"})
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    failed = [c for c in calls if c["status"] == "error"]
    assert {c["name"] for c in failed} == {"RunnableSequence", "fail"}
    assert all(c["error"] == "ValueError: no owls today" for c in failed)
    assert langchain_metrics(run.run_id)["langchain.errors"] == 2


def test_after_disable_nothing_is_recorded(sqlite_uri: str, tmp_path: Path) -> None:
    mltrack.autolog("langchain")
    mltrack.autolog("langchain", disable=True)
    with mltrack.start_run() as run:
        assert chat_chain("quiet").invoke({"topic": "owls"}) == "quiet"
        add.invoke({"a": 1, "b": 1})
    assert traces(sqlite_uri, run.run_id, tmp_path) == []
    assert langchain_metrics(run.run_id) == {}


def test_outside_a_run_chains_work_and_nothing_is_recorded(sqlite_uri: str, tmp_path: Path, autolog: None) -> None:
    chain = chat_chain("outside", "inside")
    assert chain.invoke({"topic": "owls"}) == "outside"
    assert add.invoke({"a": 2, "b": 2}) == 4
    with mltrack.start_run() as run:
        chain.invoke({"topic": "owls"})
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert [c["step"] for c in calls if c["parent_id"] is None] == [0]
    assert calls[0]["outputs"] == "inside"


def test_track_with_autolog_traces_that_run_only(sqlite_uri: str, tmp_path: Path) -> None:
    run_ids: list[str] = []

    @mltrack.track(autolog=["langchain"])
    def answer(topic: str) -> str:
        run_ids.append(mltrack.active_run().run_id)  # type: ignore[union-attr]
        return chat_chain("tracked").invoke({"topic": topic})

    assert answer("owls") == "tracked"
    assert len(traces(sqlite_uri, run_ids[0], tmp_path)) == 4
    with mltrack.start_run() as after:
        chat_chain("untracked").invoke({"topic": "owls"})
    assert traces(sqlite_uri, after.run_id, tmp_path) == []


def test_an_explicit_handler_records_without_autolog_and_is_not_doubled_by_it(sqlite_uri: str, tmp_path: Path) -> None:
    with mltrack.start_run() as run:
        chat_chain("by hand").invoke({"topic": "owls"}, config={"callbacks": [MLTrackCallbackHandler()]})
        mltrack.autolog("langchain")
        try:
            chat_chain("both").invoke({"topic": "bats"}, config={"callbacks": [MLTrackCallbackHandler()]})
        finally:
            mltrack.autolog("langchain", disable=True)
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert len(calls) == 8
    assert [c["outputs"] for c in calls if c["parent_id"] is None] == ["by hand", "both"]


def test_an_explicit_handler_records_into_the_run_it_names(sqlite_uri: str, tmp_path: Path) -> None:
    with mltrack.start_run() as target:
        pass
    with mltrack.start_run(run_id=target.run_id), mltrack.start_run(nested=True) as child:
        chat_chain("named").invoke({"topic": "owls"}, config={"callbacks": [MLTrackCallbackHandler(target.run_id)]})
    assert traces(sqlite_uri, child.run_id, tmp_path) == []
    assert len(traces(sqlite_uri, target.run_id, tmp_path)) == 4


def test_a_resumed_run_keeps_its_earlier_traces_and_continues_the_steps(
    sqlite_uri: str, tmp_path: Path, autolog: None
) -> None:
    with mltrack.start_run() as run:
        chat_chain("first").invoke({"topic": "owls"})
    with mltrack.start_run(run_id=run.run_id):
        chat_chain("second").invoke({"topic": "bats"})
    calls = traces(sqlite_uri, run.run_id, tmp_path)
    assert [(c["step"], c["outputs"]) for c in calls if c["parent_id"] is None] == [(0, "first"), (1, "second")]
    history = mlflow.MlflowClient(sqlite_uri).get_metric_history(run.run_id, "langchain.calls")
    assert sorted(m.step for m in history) == [0, 1]


def test_flush_traces_writes_the_artifact_before_the_run_ends(sqlite_uri: str, tmp_path: Path, autolog: None) -> None:
    with mltrack.start_run() as run:
        chat_chain("early").invoke({"topic": "owls"})
        assert flush_traces() == 4
        assert len(traces(sqlite_uri, run.run_id, tmp_path / "early")) == 4
        chat_chain("late").invoke({"topic": "bats"})
    assert len(traces(sqlite_uri, run.run_id, tmp_path / "final")) == 8
    with pytest.raises(mltrack.NoActiveRunError):
        flush_traces()


def test_settings_can_leave_out_inputs_and_outputs_and_cut_long_text(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autolog: None
) -> None:
    from mltrack.config.settings import reset_settings

    monkeypatch.setenv("MLTRACK_PLUGINS__LANGCHAIN__MAX_TEXT_CHARS", "5")
    reset_settings()
    with mltrack.start_run() as run:
        chat_chain("a long answer").invoke({"topic": "owls"})
    root = traces(sqlite_uri, run.run_id, tmp_path / "cut")[0]
    assert root["outputs"] == "a lon... [8 more chars]"

    monkeypatch.setenv("MLTRACK_PLUGINS__LANGCHAIN__LOG_INPUTS_OUTPUTS", "false")
    reset_settings()
    with mltrack.start_run() as run:
        chat_chain("secret").invoke({"topic": "secret"})
    calls = traces(sqlite_uri, run.run_id, tmp_path / "off")
    assert len(calls) == 4
    assert all(c["inputs"] is None and c["outputs"] is None for c in calls)
    assert calls[2]["tokens"]["total"] == 10
