"""Tracing LangChain calls into the active MLTrack run.

:class:`MLTrackCallbackHandler` records every call LangChain reports (chains, prompts,
parsers, LLMs, chat models, tools, retrievers): its name, run type, parent, latency,
token usage when the model reports it, inputs and outputs. Each top-level invocation is
one trace, recorded as an MLflow trace linked to the run (:mod:`mltrack_langchain.mlflow_traces`:
``mlflow.search_traces(run_id=...)`` and MLflow's trace view find it). When a trace ends its
aggregate metrics are logged (``langchain.calls``,
``langchain.latency_s``, ``langchain.tokens.total``, ... at step 0, 1, 2... per run),
and its calls are kept until the run ends, when they are written as the JSON-lines
artifact ``traces/langchain.jsonl`` (one line per call, an export; :func:`flush_traces`
writes earlier). Calls made while no run is active are not recorded.

``mltrack.autolog("langchain")`` attaches a handler to every invocation through
LangChain's configure hooks (:func:`enable_autolog`), process-wide, so calls from
other threads and notebook cells are traced too.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

import mltrack
from mltrack import MLTrackError, NoActiveRunError

logger = logging.getLogger("mltrack.langchain")

TRACE_ARTIFACT = "traces/langchain.jsonl"
LLM_RUN_TYPES = ("llm", "chat_model")
_MAX_DEPTH = 8


@dataclass
class _Trace:
    """One top-level invocation and the calls below it."""

    trace_id: str
    run_id: str  # the MLTrack run it is recorded in
    step: int
    log_inputs_outputs: bool
    max_text_chars: int
    mlflow_trace: bool
    spans: list[_Span] = field(default_factory=list)
    finished: bool = False


@dataclass
class _Span:
    """One call: a chain, prompt, parser, LLM, chat model, tool or retriever run."""

    span_id: str
    parent_id: str | None
    trace: _Trace
    name: str
    run_type: str
    start_time_ms: int
    started: float  # perf_counter(), for the latency
    start_ns: int
    inputs: Any
    tags: list[str]
    model: str | None = None
    end_time_ms: int | None = None
    end_ns: int | None = None
    latency_s: float | None = None
    status: str = "running"
    outputs: Any = None
    error: str | None = None
    tokens: dict[str, int] | None = None

    def record(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "step": self.trace.step,
            "name": self.name,
            "run_type": self.run_type,
            "model": self.model,
            "start_time_ms": self.start_time_ms,
            "end_time_ms": self.end_time_ms,
            "latency_s": self.latency_s,
            "status": self.status,
            "error": self.error,
            "tokens": self.tokens,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "tags": self.tags,
        }


class _TraceStore:
    """Recorded calls per MLTrack run (JSON lines), kept until the run ends, and each run's next step.

    A run can be resumed (``start_run(run_id=...)``): its steps then continue after those
    already logged, and the trace artifact it already has is read back before it is rewritten.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, list[str]] = {}
        self._steps: dict[str, int] = {}
        self._closed: set[str] = set()
        self._synced: set[str] = set()  # runs whose lines include what their artifact already holds

    def next_step(self, run_id: str) -> int:
        if run_id not in self._steps:
            first = _first_free_step(run_id)  # a store query: outside the lock
            with self._lock:
                self._steps.setdefault(run_id, first)
        with self._lock:
            step = self._steps[run_id]
            self._steps[run_id] = step + 1
            return step

    def add(self, run_id: str, lines: list[str]) -> bool:
        with self._lock:
            if run_id in self._closed:
                return False
            self._lines.setdefault(run_id, []).extend(lines)
            return True

    def lines(self, run_id: str) -> list[str]:
        """Everything to write for ``run_id``, the artifact's earlier content first."""
        with self._lock:
            if not self._lines.get(run_id):
                return []
            needs_sync = run_id not in self._synced
            self._synced.add(run_id)
        if needs_sync:
            existing = _artifact_lines(run_id)
            with self._lock:
                self._lines[run_id][:0] = existing
        with self._lock:
            return list(self._lines.get(run_id, []))

    def close(self, run_id: str) -> None:
        """Forget the run's lines; traces that finish later are dropped until it is resumed."""
        with self._lock:
            self._closed.add(run_id)
            self._synced.discard(run_id)
            self._lines.pop(run_id, None)

    def reopen(self, run_id: str) -> None:
        with self._lock:
            self._closed.discard(run_id)


_store = _TraceStore()


def flush_traces(run_id: str | None = None) -> int:
    """Write the calls recorded so far in ``run_id`` (default: the active run) to its trace artifact.

    Returns how many calls the artifact holds. Runs write theirs when they end; call this
    to see them earlier.
    """
    if run_id is None:
        run = mltrack.active_run()
        if run is None:
            raise NoActiveRunError("no active run whose LangChain traces could be written")
        run_id = run.run_id
    lines = _store.lines(run_id)
    if lines:
        mltrack.log_text("".join(lines), TRACE_ARTIFACT, run_id=run_id)
    return len(lines)


def write_traces_at_run_end(run_id: str) -> None:
    """Write the run's trace artifact and forget its calls (the plugin's ``on_run_end``)."""
    from mltrack_langchain import mlflow_traces

    try:
        mlflow_traces.flush()
        flush_traces(run_id)
    finally:
        _store.close(run_id)


def reopen_traces(run_id: str) -> None:
    """Record into ``run_id`` again: it was resumed (the plugin's ``on_run_start``)."""
    _store.reopen(run_id)


def _client(run_id: str) -> Any:
    from mltrack.extend import run_client

    return run_client(run_id)


def _first_free_step(run_id: str) -> int:
    """0 for a new run; after the last step already logged for a resumed one."""
    try:
        history = _client(run_id).get_metric_history(run_id, "langchain.calls")
    except Exception as exc:  # numbering is a nicety: never fail an invocation over it
        logger.debug("mltrack: could not read langchain.calls of run %s: %s", run_id, exc)
        return 0
    return max((m.step for m in history), default=-1) + 1


def _artifact_lines(run_id: str) -> list[str]:
    """What the run's trace artifact already holds in the store (a resumed run's earlier calls)."""
    client = _client(run_id)
    if TRACE_ARTIFACT not in [a.path for a in client.list_artifacts(run_id, "traces")]:
        return []
    with tempfile.TemporaryDirectory(prefix="mltrack-langchain-") as tmp:
        local = client.download_artifacts(run_id, TRACE_ARTIFACT, tmp)
        return Path(local).read_text(encoding="utf-8").splitlines(keepends=True)


def _settings() -> tuple[bool, int, bool]:
    """(log_inputs_outputs, max_text_chars, mlflow_traces) from the plugin's settings; defaults if it
    is not loaded."""
    from mltrack_langchain.settings import LangChainSettings

    try:
        settings = mltrack.plugin_settings("langchain")
    except MLTrackError:
        settings = LangChainSettings.model_validate({})
    return settings.log_inputs_outputs, settings.max_text_chars, settings.mlflow_traces


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _jsonable(value: Any, max_chars: int, depth: int = 0) -> Any:
    """A JSON-ready copy of a call's input or output, long text cut to ``max_chars``."""
    if isinstance(value, str):
        text = str(value)
        return text if len(text) <= max_chars else text[:max_chars] + f"... [{len(text) - max_chars} more chars]"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= _MAX_DEPTH:
        return _jsonable(repr(value), max_chars)
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage

    if isinstance(value, BaseMessage):
        message: dict[str, Any] = {"type": value.type, "content": _jsonable(value.content, max_chars, depth + 1)}
        tool_calls = getattr(value, "tool_calls", None)
        if tool_calls:
            message["tool_calls"] = _jsonable(tool_calls, max_chars, depth + 1)
        return message
    if isinstance(value, Document):
        return {
            "page_content": _jsonable(value.page_content, max_chars, depth + 1),
            "metadata": _jsonable(value.metadata, max_chars, depth + 1),
        }
    if isinstance(value, dict):
        return {str(key): _jsonable(item, max_chars, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(item, max_chars, depth + 1) for item in value]
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return _jsonable(model_dump(mode="json"), max_chars, depth + 1)
        except Exception:
            pass
    return _jsonable(repr(value), max_chars)


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], fallback: str) -> str:
    if kwargs.get("name"):
        return str(kwargs["name"])
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        if serialized.get("id"):
            return str(serialized["id"][-1])
    return fallback


def _token_usage(response: Any) -> dict[str, int] | None:
    """Tokens of an LLM result: the messages' ``usage_metadata``, else the provider's ``llm_output``."""
    found = False
    used = {"input": 0, "output": 0, "total": 0}
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if usage:
                found = True
                used["input"] += int(usage.get("input_tokens") or 0)
                used["output"] += int(usage.get("output_tokens") or 0)
                used["total"] += int(usage.get("total_tokens") or 0)
    if not found:
        llm_output = getattr(response, "llm_output", None) or {}
        usage = llm_output.get("token_usage") or llm_output.get("usage")
        if not isinstance(usage, dict) or not usage:
            return None
        used["input"] = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        used["output"] = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        used["total"] = int(usage.get("total_tokens") or 0)
    if not used["total"]:
        used["total"] = used["input"] + used["output"]
    return used


def _llm_outputs(response: Any) -> list[Any]:
    outputs: list[Any] = []
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            message = getattr(generation, "message", None)
            outputs.append(message if message is not None else getattr(generation, "text", None))
    return outputs


class MLTrackCallbackHandler(BaseCallbackHandler):
    """Records LangChain calls in an MLTrack run.

    Pass it as a callback (``chain.invoke(x, config={"callbacks": [MLTrackCallbackHandler()]})``)
    or switch on ``mltrack.autolog("langchain")`` to have it on every invocation.

    Args:
        run_id: the MLTrack run to record into; default: the run active when each
            top-level invocation starts (none active: nothing is recorded).
    """

    # Called in the caller's thread and order, also under asyncio, so a trace is complete
    # when its top-level call returns.
    run_inline = True

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self._spans: dict[UUID, _Span] = {}
        self._lock = threading.Lock()

    def _target_run(self) -> str | None:
        """The MLTrack run a new trace goes to, or None to record nothing."""
        if self.run_id is not None:
            return self.run_id
        run = mltrack.active_run()
        return run.run_id if run is not None else None

    # -- bookkeeping --------------------------------------------------------------------

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        run_type: str,
        inputs: Any,
        tags: list[str] | None,
        model: str | None = None,
    ) -> None:
        with self._lock:
            parent = self._spans.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            trace = parent.trace
        else:  # a top-level call (or one whose parent this handler never saw): a new trace
            target = self._target_run()
            if target is None:
                return
            log_io, max_chars, mlflow_trace = _settings()
            trace = _Trace(str(run_id), target, _store.next_step(target), log_io, max_chars, mlflow_trace)
        span = _Span(
            span_id=str(run_id),
            parent_id=parent.span_id if parent is not None else None,
            trace=trace,
            name=name,
            run_type=run_type,
            start_time_ms=_now_ms(),
            started=time.perf_counter(),
            start_ns=time.time_ns(),
            inputs=_jsonable(inputs, trace.max_text_chars) if trace.log_inputs_outputs else None,
            tags=list(tags or []),
            model=model,
        )
        with self._lock:
            self._spans[run_id] = span
            trace.spans.append(span)

    def _end(
        self,
        run_id: UUID,
        outputs: Any = None,
        error: BaseException | None = None,
        tokens: dict[str, int] | None = None,
    ) -> None:
        with self._lock:
            span = self._spans.pop(run_id, None)
        if span is None or span.trace.finished:
            return
        trace = span.trace
        span.latency_s = time.perf_counter() - span.started
        span.end_time_ms = _now_ms()
        span.end_ns = time.time_ns()
        span.tokens = tokens
        if error is not None:
            span.status = "error"
            span.error = f"{type(error).__name__}: {error}"
        else:
            span.status = "ok"
            if trace.log_inputs_outputs:
                span.outputs = _jsonable(outputs, trace.max_text_chars)
        if span.span_id == trace.trace_id:
            self._finish(trace, span)

    def _finish(self, trace: _Trace, root: _Span) -> None:
        with self._lock:
            trace.finished = True
            spans = sorted(trace.spans, key=lambda s: (s.start_time_ms, s.started))
            # calls still open (an abandoned stream) are recorded as "running" and forgotten
            for key in [key for key, open_span in self._spans.items() if open_span.trace is trace]:
                del self._spans[key]
        metrics: dict[str, float] = {
            "langchain.calls": len(spans),
            "langchain.llm_calls": sum(s.run_type in LLM_RUN_TYPES for s in spans),
            "langchain.tool_calls": sum(s.run_type == "tool" for s in spans),
            "langchain.errors": sum(s.status == "error" for s in spans),
            "langchain.latency_s": root.latency_s or 0.0,
        }
        usages = [s.tokens for s in spans if s.tokens]
        if usages:
            for kind in ("input", "output", "total"):
                metrics[f"langchain.tokens.{kind}"] = sum(u[kind] for u in usages)
        lines = [json.dumps(s.record(), default=str) + "\n" for s in spans]
        if not _store.add(trace.run_id, lines):
            return  # the run ended while this invocation was still going
        if trace.mlflow_trace:
            _export_mlflow_trace(trace, root, spans)
        try:
            mltrack.log_metrics(metrics, step=trace.step, run_id=trace.run_id)
        except MLTrackError as exc:
            logger.warning("mltrack: could not log LangChain metrics to run %s: %s", trace.run_id, exc)

    # -- chains (also prompts and parsers, by run_type) -----------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _name(serialized, kwargs, "chain")
        self._start(run_id, parent_run_id, name, kwargs.get("run_type") or "chain", inputs, tags)

    def on_chain_end(self, outputs: dict[str, Any], *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, outputs)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    # -- LLMs and chat models ----------------------------------------------------------------

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _name(serialized, kwargs, "llm")
        self._start(run_id, parent_run_id, name, "llm", {"prompts": prompts}, tags, _model_name(kwargs, metadata))

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _name(serialized, kwargs, "chat_model")
        model = _model_name(kwargs, metadata)
        self._start(run_id, parent_run_id, name, "chat_model", {"messages": messages}, tags, model)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, _llm_outputs(response), tokens=_token_usage(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    # -- tools and retrievers ----------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _name(serialized, kwargs, "tool")
        self._start(run_id, parent_run_id, name, "tool", inputs if inputs is not None else input_str, tags)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, output)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _name(serialized, kwargs, "retriever")
        self._start(run_id, parent_run_id, name, "retriever", {"query": query}, tags)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, documents)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)


def _export_mlflow_trace(trace: _Trace, root: _Span, spans: list[_Span]) -> None:
    from mltrack_langchain import mlflow_traces

    try:
        tracking_uri = _client(trace.run_id).tracking_uri
    except Exception as exc:  # tracing never fails the invocation
        logger.debug("mltrack: no store for LangChain trace of run %s: %s", trace.run_id, exc)
        return
    end_ns = root.end_ns or time.time_ns()
    finished = [
        mlflow_traces.FinishedSpan(
            span_id=s.span_id,
            parent_id=s.parent_id,
            name=s.name,
            run_type=s.run_type,
            start_ns=s.start_ns,
            end_ns=s.end_ns or end_ns,
            ok=s.status == "ok",
            # a call still open when its invocation returned (an abandoned stream) did not finish
            error=s.error if s.status != "running" else "did not finish",
            inputs=s.inputs,
            outputs=s.outputs,
            tokens=s.tokens,
            model=s.model,
        )
        for s in [root, *(s for s in spans if s is not root)]
    ]
    mlflow_traces.export_trace(trace.run_id, tracking_uri, finished)


def _model_name(kwargs: dict[str, Any], metadata: dict[str, Any] | None) -> str | None:
    params = kwargs.get("invocation_params") or {}
    for value in (params.get("model"), params.get("model_name"), (metadata or {}).get("ls_model_name")):
        if value:
            return str(value)
    return None


# -- autologging --------------------------------------------------------------------------

_autolog_enabled = False
_autolog_hook: ContextVar[MLTrackCallbackHandler | None] | None = None
_hook_lock = threading.Lock()


class _AutologHandler(MLTrackCallbackHandler):
    """The handler autologging attaches everywhere; it records only while autologging is on."""

    def _target_run(self) -> str | None:
        return super()._target_run() if _autolog_enabled else None


def enable_autolog() -> None:
    """Attach a handler to every LangChain invocation from now on (idempotent).

    LangChain's configure hooks add the handler that a ContextVar holds to each
    invocation's callbacks. The variable's default is the autolog handler, so it applies in
    every thread and context; it is registered once per process (LangChain has no way to
    unregister a hook), and :func:`disable_autolog` makes it record nothing. An invocation
    that already has an ``MLTrackCallbackHandler`` gets no second one.
    """
    global _autolog_enabled, _autolog_hook
    with _hook_lock:
        if _autolog_hook is None:
            from langchain_core.tracers.context import register_configure_hook

            # The default, not .set(), so that every thread and context sees the handler.
            _autolog_hook = ContextVar("mltrack_langchain_autolog", default=_AutologHandler())  # noqa: B039
            register_configure_hook(_autolog_hook, inheritable=True, handle_class=MLTrackCallbackHandler)
        _autolog_enabled = True


def disable_autolog() -> None:
    """Stop recording invocations that start from now on (idempotent)."""
    global _autolog_enabled
    _autolog_enabled = False


def autolog_enabled() -> bool:
    return _autolog_enabled
