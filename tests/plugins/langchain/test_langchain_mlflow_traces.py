"""LangChain invocations become MLflow traces linked to the MLTrack run (fake LLMs from
langchain_core are the one seam), on sqlite and through a real ``mlflow server``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from fake_chains import add, chat_chain
from langchain_core.runnables import RunnableLambda

import mltrack


@pytest.fixture
def autolog() -> Iterator[None]:
    mltrack.autolog("langchain")
    yield
    mltrack.autolog("langchain", disable=True)


def run_traces(uri: str, run_id: str) -> list[Any]:
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_traces(run_id=run_id, return_type="list")
    return sorted(found, key=lambda t: t.info.request_time)


def test_each_invocation_is_an_mlflow_trace_of_the_run_with_spans_and_tokens(tracking_uri: str, autolog: None) -> None:
    with mltrack.start_run() as run:
        assert chat_chain("Owls hoot.").invoke({"topic": "owls"}) == "Owls hoot."
        assert add.invoke({"a": 1, "b": 2}) == 3
    chain, tool = run_traces(tracking_uri, run.run_id)
    assert chain.info.trace_metadata["mlflow.sourceRun"] == run.run_id
    assert chain.info.experiment_id == mltrack.get_run(run.run_id).info.experiment_id
    assert chain.info.state.value == "OK"
    assert chain.info.token_usage == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    spans = chain.data.spans
    assert [(s.name, s.span_type) for s in spans] == [
        ("RunnableSequence", "CHAIN"),
        ("ChatPromptTemplate", "CHAIN"),
        ("GenericFakeChatModel", "CHAT_MODEL"),
        ("StrOutputParser", "PARSER"),
    ]
    root = spans[0]
    assert root.parent_id is None and {s.parent_id for s in spans[1:]} == {root.span_id}
    assert (root.inputs, root.outputs) == ({"topic": "owls"}, "Owls hoot.")
    assert all(root.start_time_ns <= s.start_time_ns <= s.end_time_ns <= root.end_time_ns for s in spans)
    assert spans[2].attributes["mlflow.chat.tokenUsage"]["total_tokens"] == 10
    assert [(s.name, s.span_type, s.outputs) for s in tool.data.spans] == [("add", "TOOL", 3)]
    # the experiment's traces are found too (the UI's per-experiment list)
    by_experiment = mlflow.search_traces(locations=[chain.info.experiment_id], return_type="list")
    assert {t.info.trace_id for t in by_experiment} >= {chain.info.trace_id, tool.info.trace_id}


def test_a_failing_call_is_an_error_span_and_still_raises(sqlite_uri: str, autolog: None) -> None:
    def fail(_: Any) -> str:
        raise ValueError("no owls today")

    with mltrack.start_run() as run, pytest.raises(ValueError, match="no owls today"):
        (RunnableLambda(lambda x: x) | RunnableLambda(fail)).invoke("owls")
    (trace,) = run_traces(sqlite_uri, run.run_id)
    assert trace.info.state.value == "ERROR"
    failed = [s for s in trace.data.spans if s.status.status_code.value == "ERROR"]
    assert {s.name for s in failed} == {"RunnableSequence", "fail"}


def test_the_setting_turns_mlflow_traces_off(sqlite_uri: str, autolog: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__LANGCHAIN__MLFLOW_TRACES", "false")
    with mltrack.start_run() as run:
        assert chat_chain("quiet").invoke({"topic": "owls"}) == "quiet"
    assert run_traces(sqlite_uri, run.run_id) == []
    assert mltrack.get_run(run.run_id).data.metrics["langchain.calls"] == 4


def test_a_trace_that_cannot_be_written_warns_once_and_the_run_goes_on(
    sqlite_uri: str, autolog: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mltrack_langchain import mlflow_traces

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("trace store is down")

    # the narrow seam: MLflow's client refuses to start a trace
    monkeypatch.setattr(mlflow.MlflowClient, "start_trace", broken)
    monkeypatch.setattr(mlflow_traces, "_warned", False)
    with caplog.at_level(logging.DEBUG, logger="mltrack.langchain"), mltrack.start_run() as run:
        assert chat_chain("one", "two").invoke({"topic": "a"}) == "one"
        assert chat_chain("three").invoke({"topic": "b"}) == "three"
        mltrack.log_metric("loss", 0.5)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "MLflow trace" in r.getMessage()]
    assert len(warnings) == 1
    assert "trace store is down" in warnings[0].getMessage()
    assert mltrack.get_run(run.run_id).info.status == "FINISHED"
    assert mltrack.get_run(run.run_id).data.metrics["langchain.calls"] == 4


@pytest.mark.parametrize("how", ["unset", "set_tracking_uri", "environment"])
def test_writing_a_trace_leaves_the_users_mlflow_tracking_uri_as_it_was(
    sqlite_uri: str, autolog: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    users_uri = f"sqlite:///{tmp_path / 'users-own.db'}"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # so MLflow's default store is not the run's either
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if how == "set_tracking_uri":
        mlflow.set_tracking_uri(users_uri)
    elif how == "environment":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", users_uri)
    with mltrack.start_run() as run:
        assert chat_chain("Owls hoot.").invoke({"topic": "owls"}) == "Owls hoot."
        # the user's own MLflow calls, mid-run, still go where the user pointed them
        assert mlflow.is_tracking_uri_set() is (how != "unset")
        if how != "unset":
            assert mlflow.get_tracking_uri() == users_uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == (None if how == "unset" else users_uri)
    (trace,) = run_traces(sqlite_uri, run.run_id)  # and the trace is next to its run, complete
    assert trace.info.state.value == "OK"
    assert len(trace.data.spans) == 4
