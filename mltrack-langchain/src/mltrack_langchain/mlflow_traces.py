"""Recording a finished LangChain invocation as an MLflow trace linked to its MLTrack run.

The callback handler collects an invocation's calls with their timings; when the top-level
call returns, :func:`export_trace` replays them through MLflow's client tracing API
(``start_trace`` / ``start_span`` / ``end_span`` / ``end_trace`` with the recorded times), so
``mlflow.search_traces(run_id=...)``, MLflow's trace view and MLTrack's UI all find them.

MLflow's tracer writes to MLflow's own tracking URI, which is process-wide. When the run's
store is elsewhere (MLTrack reads ``MLTRACK_TRACKING_URI`` first) the tracer is pointed at the
run's store while the trace is written (and flushed, since MLflow's background trace writer is
bound to the URI it was made for), then MLflow's URI and ``MLFLOW_TRACKING_URI`` are put back as
the user had them: a trace belongs next to its run, and the user's own ``mlflow`` calls must not
start writing somewhere else because a chain ran.

Tracing is never allowed to fail an invocation or a training run: a trace that cannot be
written is dropped with one warning per process (later failures go to the debug log).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("mltrack.langchain")

# LangChain run types -> MLflow span types (mlflow.entities.SpanType values).
SPAN_TYPES = {
    "chain": "CHAIN",
    "llm": "LLM",
    "chat_model": "CHAT_MODEL",
    "tool": "TOOL",
    "retriever": "RETRIEVER",
    "parser": "PARSER",
    "prompt": "CHAIN",
    "embedding": "EMBEDDING",
}
# MLflow sums this span attribute into the trace's token usage (TraceInfo.token_usage).
TOKEN_USAGE_ATTRIBUTE = "mlflow.chat.tokenUsage"
RUN_TYPE_ATTRIBUTE = "langchain.run_type"
MODEL_ATTRIBUTE = "langchain.model"

_lock = threading.Lock()  # held while a trace is written: one tracer URI switch at a time
_state_lock = threading.Lock()  # the warning flag and the cache below
_warned = False
_experiments: dict[str, str] = {}  # run id -> experiment id


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    """One recorded call, as the exporter needs it."""

    span_id: str
    parent_id: str | None
    name: str
    run_type: str
    start_ns: int
    end_ns: int
    ok: bool
    error: str | None
    inputs: Any
    outputs: Any
    tokens: dict[str, int] | None
    model: str | None


def export_trace(run_id: str, tracking_uri: str, spans: Sequence[FinishedSpan]) -> str | None:
    """Write ``spans`` (the root first) as one MLflow trace of ``run_id``; its id, or None if it failed."""
    try:
        return _export(run_id, tracking_uri, spans)
    except Exception as exc:  # tracing is a by-product: never fail the user's invocation
        _warn_once(run_id, exc)
        return None


def flush() -> None:
    """Wait until MLflow's background trace writer has stored every finished trace."""
    try:
        import mlflow

        mlflow.flush_trace_async_logging()
    except Exception as exc:
        _warn_once(None, exc)


def _warn_once(run_id: str | None, exc: Exception) -> None:
    global _warned
    with _state_lock:
        first, _warned = not _warned, True
    where = f" of run {run_id}" if run_id else ""
    message = "mltrack: could not record a LangChain trace%s as an MLflow trace (%s: %s)"
    if first:
        logger.warning(
            message + "; the run goes on, the JSON-lines export still has it. Further failures are logged "
            "at debug level (MLTRACK_DEBUG=1)",
            where,
            type(exc).__name__,
            exc,
        )
    else:
        logger.debug(message, where, type(exc).__name__, exc)


@contextmanager
def _tracer_pointed_at(tracking_uri: str) -> Iterator[None]:
    import mlflow

    if mlflow.get_tracking_uri() == tracking_uri:
        yield  # MLflow already writes next to the run: its asynchronous trace writer may stay so
        return
    users_env = os.environ.get("MLFLOW_TRACKING_URI")
    users_uri = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None  # type: ignore[no-untyped-call]
    if users_uri == users_env:
        users_uri = None  # it came from the environment, which is put back below
    mlflow.set_tracking_uri(tracking_uri)  # also rebuilds MLflow's tracer for the new URI
    try:
        yield
        # The tracer made for the run's store is dropped below: its queued writes must land first.
        mlflow.flush_trace_async_logging()
    finally:
        mlflow.set_tracking_uri(users_uri)  # type: ignore[arg-type]  # None = unset, as it was
        if users_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = users_env


def _experiment_id(client: Any, run_id: str) -> str:
    with _state_lock:
        known = _experiments.get(run_id)
    if known is None:
        known = str(client.get_run(run_id).info.experiment_id)
        with _state_lock:
            _experiments[run_id] = known
    return known


def _attributes(span: FinishedSpan) -> dict[str, Any]:
    attributes: dict[str, Any] = {RUN_TYPE_ATTRIBUTE: span.run_type}
    if span.model:
        attributes[MODEL_ATTRIBUTE] = span.model
    if span.tokens:
        attributes[TOKEN_USAGE_ATTRIBUTE] = {
            "input_tokens": span.tokens["input"],
            "output_tokens": span.tokens["output"],
            "total_tokens": span.tokens["total"],
        }
    if span.error:
        attributes["langchain.error"] = span.error
    return attributes


def _export(run_id: str, tracking_uri: str, spans: Sequence[FinishedSpan]) -> str:
    import mlflow

    root, children = spans[0], spans[1:]
    with _lock, _tracer_pointed_at(tracking_uri):  # one URI switch at a time
        client = mlflow.MlflowClient(tracking_uri)
        experiment_id = _experiment_id(client, run_id)
        live_root = client.start_trace(
            root.name,
            span_type=SPAN_TYPES.get(root.run_type, "UNKNOWN"),
            inputs=root.inputs,
            attributes=_attributes(root),
            experiment_id=experiment_id,
            start_time_ns=root.start_ns,
            run_id=run_id,
        )
        trace_id = live_root.trace_id
        mlflow_ids = {root.span_id: live_root.span_id}
        for span in children:  # in start order: a parent is always started before its children
            parent = mlflow_ids.get(span.parent_id or "", live_root.span_id)
            started = client.start_span(
                span.name,
                trace_id=trace_id,
                parent_id=parent,
                span_type=SPAN_TYPES.get(span.run_type, "UNKNOWN"),
                inputs=span.inputs,
                attributes=_attributes(span),
                start_time_ns=span.start_ns,
            )
            mlflow_ids[span.span_id] = started.span_id
        for span in reversed(children):  # children end before their parents
            client.end_span(
                trace_id,
                mlflow_ids[span.span_id],
                outputs=span.outputs,
                status="OK" if span.ok else "ERROR",
                end_time_ns=span.end_ns,
            )
        client.end_trace(trace_id, outputs=root.outputs, status="OK" if root.ok else "ERROR", end_time_ns=root.end_ns)
    return str(trace_id)
