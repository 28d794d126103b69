"""Read routes for MLflow traces (LLM calls, chains, tools): a list per experiment or run, and one
trace's span tree.

Traces are read through MLflow's public client (``search_traces`` / ``get_trace``), so the UI
shows whatever wrote them: MLTrack's LangChain plugin, ``mlflow.langchain.autolog``, ``@mlflow.trace``.
Span inputs and outputs are sent as text (JSON rendered with indentation): the front end shows
them as text, never as HTML, whatever a model answered.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI

from mltrack import InvalidInputError
from mltrack.extend import MlflowStore

SOURCE_RUN = "mlflow.sourceRun"  # trace metadata: the run a trace belongs to
TRACE_NAME = "mlflow.traceName"  # trace tag: the root span's name
TOKEN_USAGE = "mlflow.chat.tokenUsage"  # span attribute: an LLM call's tokens
MAX_TRACES = 500
DEFAULT_TRACES = 100
# Longer inputs/outputs are cut: a page of one trace must stay readable and small.
MAX_TEXT_CHARS = 20_000


def as_text(value: Any) -> str | None:
    """A span input or output as display text (``None`` when it has none)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_TEXT_CHARS:
        return text[:MAX_TEXT_CHARS] + f"\n... [{len(text) - MAX_TEXT_CHARS} more characters]"
    return text


def _tokens(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    return {
        "input": int(usage.get("input_tokens") or 0),
        "output": int(usage.get("output_tokens") or 0),
        "total": int(usage.get("total_tokens") or 0),
    }


def trace_summary(info: Any) -> dict[str, Any]:
    """One row of a trace list, from an MLflow ``TraceInfo``."""
    return {
        "trace_id": info.trace_id,
        "name": info.tags.get(TRACE_NAME) or info.trace_id,
        "experiment_id": info.experiment_id,
        "run_id": info.trace_metadata.get(SOURCE_RUN),
        "status": str(getattr(info.state, "value", info.state)),
        "start_time": info.request_time,
        "latency_ms": info.execution_duration,
        "tokens": _tokens(info.token_usage),
    }


def _span(span: Any, trace_start_ns: int) -> dict[str, Any]:
    attributes = span.attributes or {}
    status = span.status
    end_ns = span.end_time_ns
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "type": span.span_type or "UNKNOWN",
        "status": str(getattr(status.status_code, "value", status.status_code)),
        "error": attributes.get("langchain.error") or status.description or None,
        "start_ms": (span.start_time_ns - trace_start_ns) / 1e6,
        "duration_ms": None if end_ns is None else (end_ns - span.start_time_ns) / 1e6,
        "model": attributes.get("langchain.model"),
        "tokens": _tokens(attributes.get(TOKEN_USAGE)),
        "inputs": as_text(span.inputs),
        "outputs": as_text(span.outputs),
    }


def trace_document(trace: Any) -> dict[str, Any]:
    """A trace with its spans (in start order; ``start_ms`` from the trace's first span)."""
    spans = sorted(trace.data.spans, key=lambda s: s.start_time_ns)
    start_ns = spans[0].start_time_ns if spans else 0
    return {**trace_summary(trace.info), "spans": [_span(s, start_ns) for s in spans]}


def list_traces(
    store: MlflowStore,
    experiment_ids: list[str],
    run_id: str | None,
    max_results: int,
    page_token: str | None,
) -> dict[str, Any]:
    if run_id:
        run = store.client.get_run(run_id)  # 404 for an unknown run
        experiment_ids = [run.info.experiment_id]
    if not experiment_ids:
        experiment_ids = [e.experiment_id for e in store.client.search_experiments()]
    found = store.client.search_traces(
        locations=experiment_ids,  # MLflow 3's name for experiment_ids
        run_id=run_id or None,
        max_results=max_results,
        order_by=["timestamp_ms DESC"],
        page_token=page_token or None,
        include_spans=False,
    )
    return {"traces": [trace_summary(t.info) for t in found], "next_page_token": found.token}


def register(app: FastAPI, store: MlflowStore) -> None:
    """Add the trace routes (under ``/api``) to ``app``."""
    api = APIRouter(prefix="/api")

    @api.get("/traces")
    def traces(
        experiment_ids: str = "",
        run_id: str = "",
        max_results: int = DEFAULT_TRACES,
        page_token: str = "",
    ) -> dict[str, Any]:
        if not 1 <= max_results <= MAX_TRACES:
            raise InvalidInputError(
                "max_results", max_results, f"must be between 1 and {MAX_TRACES}", hint="page with page_token for more"
            )
        ids = [part.strip() for part in experiment_ids.split(",") if part.strip()]
        return list_traces(store, ids, run_id.strip(), max_results, page_token)

    @api.get("/traces/{trace_id}")
    def trace(trace_id: str) -> dict[str, Any]:
        found = store.client.get_trace(trace_id, display=False)
        return trace_document(found)

    app.include_router(api)
