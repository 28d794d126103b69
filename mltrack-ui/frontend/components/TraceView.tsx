"use client";

// LLM traces (MLflow traces): a list (name, status, latency, tokens) and one trace's span tree as a
// waterfall. Span inputs and outputs arrive as text and are rendered as text nodes, never as HTML:
// a model's answer may contain anything.

import { useState } from "react";

import type { TokenCounts, TraceDetail, TraceSpan, TraceSummary } from "@/lib/api";
import { formatTime } from "@/lib/format";
import { useApi } from "@/lib/useApi";

import "./actions.css";
import { ErrorNote, StatusBadge } from "./Common";

interface TraceList {
  traces: TraceSummary[];
  next_page_token: string | null;
}

/** A duration; `precise` shows sub-millisecond spans (a trace's own latency is whole milliseconds). */
export function formatMs(ms: number | null | undefined, precise = false): string {
  if (ms === null || ms === undefined) return "";
  if (ms < 1) return precise ? `${ms.toFixed(2)} ms` : "< 1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function tokenText(tokens: TokenCounts | null): string {
  return tokens ? `${tokens.total} (${tokens.input} in, ${tokens.output} out)` : "";
}

/** Spans in tree order (each after its parent, siblings by start) with their depth. */
function treeOrder(spans: TraceSpan[]): { span: TraceSpan; depth: number }[] {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string | null, TraceSpan[]>();
  for (const span of spans) {
    const parent = span.parent_id !== null && ids.has(span.parent_id) ? span.parent_id : null;
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const out: { span: TraceSpan; depth: number }[] = [];
  const visit = (parent: string | null, depth: number) => {
    for (const span of [...(children.get(parent) ?? [])].sort((a, b) => a.start_ms - b.start_ms)) {
      out.push({ span, depth });
      visit(span.span_id, depth + 1);
    }
  };
  visit(null, 0);
  return out;
}

function SpanDetail({ span }: { span: TraceSpan }) {
  return (
    <div data-testid="span-detail">
      <h3>
        {span.name} <span className="span-type">{span.type}</span>
      </h3>
      <p className="muted">
        {formatMs(span.duration_ms, true)} · starts at +{formatMs(span.start_ms, true)}
        {span.model ? ` · model ${span.model}` : ""}
        {span.tokens ? ` · tokens ${tokenText(span.tokens)}` : ""}
      </p>
      {span.error && <p className="error">{span.error}</p>}
      <h4>Inputs</h4>
      <pre className="span-text" data-testid="span-inputs">
        {span.inputs ?? "(none recorded)"}
      </pre>
      <h4>Outputs</h4>
      <pre className="span-text" data-testid="span-outputs">
        {span.outputs ?? "(none recorded)"}
      </pre>
    </div>
  );
}

export function TraceWaterfall({ traceId }: { traceId: string }) {
  const { data, error, loading } = useApi<TraceDetail>(`/api/traces/${encodeURIComponent(traceId)}`);
  const [picked, setPicked] = useState<string | null>(null);
  if (error) return <ErrorNote error={error} />;
  if (loading || !data) return <p className="muted">Loading trace…</p>;
  const rows = treeOrder(data.spans);
  const total = Math.max(1e-6, ...data.spans.map((s) => s.start_ms + (s.duration_ms ?? 0)));
  const current = data.spans.find((s) => s.span_id === picked) ?? data.spans[0];
  return (
    <div className="card" data-testid="trace-detail">
      <h2>
        {data.name} <StatusBadge status={data.status} />
      </h2>
      <p className="muted">
        {formatMs(data.latency_ms)} · {data.spans.length} spans{data.tokens ? ` · tokens ${tokenText(data.tokens)}` : ""} ·{" "}
        <span title={data.trace_id}>{data.trace_id}</span>
      </p>
      <div className="waterfall" data-testid="waterfall">
        {rows.map(({ span, depth }) => (
          <button
            type="button"
            key={span.span_id}
            className={`span-row${current?.span_id === span.span_id ? " picked" : ""}`}
            onClick={() => setPicked(span.span_id)}
            data-testid="span-row"
          >
            <span className="span-name" style={{ paddingLeft: `${depth * 1.1}rem` }} title={span.name}>
              {span.name}
              <span className="span-type">{span.type}</span>
            </span>
            <span className="span-track">
              <span
                className={`span-bar type-${span.type.toLowerCase()}${span.status === "ERROR" ? " span-error" : ""}`}
                style={{ left: `${(span.start_ms / total) * 100}%`, width: `${((span.duration_ms ?? 0) / total) * 100}%` }}
              />
            </span>
            <span className="span-ms">{formatMs(span.duration_ms, true)}</span>
          </button>
        ))}
      </div>
      {current && <SpanDetail span={current} />}
    </div>
  );
}

/** The traces of a run (`runId`) or of experiments (`experimentIds`), and the one picked. */
export function TraceList({ runId, experimentIds, emptyText }: { runId?: string; experimentIds?: string; emptyText?: string }) {
  const { data, error, loading } = useApi<TraceList>("/api/traces", { run_id: runId, experiment_ids: experimentIds });
  return (
    <>
      <ErrorNote error={error} />
      {loading && <p className="muted">Loading traces…</p>}
      {data && <TraceTable traces={data.traces} emptyText={emptyText} />}
    </>
  );
}

/** A list of traces and the waterfall of the one picked (the first by default). */
function TraceTable({ traces, emptyText }: { traces: TraceList["traces"]; emptyText?: string }) {
  const [picked, setPicked] = useState<string | null>(null);
  const current = picked ?? traces[0]?.trace_id ?? null;
  return (
    <>
      {traces.length === 0 && <p className="muted">{emptyText ?? "No traces."}</p>}
      {traces.length > 0 && (
        <div className="trace-layout">
          <div className="table-wrap">
            <table className="grid trace-list" data-testid="trace-list">
              <thead>
                <tr>
                  <th>trace</th>
                  <th>status</th>
                  <th>latency</th>
                  <th>tokens</th>
                  <th>started</th>
                </tr>
              </thead>
              <tbody>
                {traces.map((t) => (
                  <tr key={t.trace_id} className={t.trace_id === current ? "picked" : undefined} onClick={() => setPicked(t.trace_id)}>
                    <td title={t.trace_id}>{t.name}</td>
                    <td>
                      <StatusBadge status={t.status} />
                    </td>
                    <td className="number">{formatMs(t.latency_ms)}</td>
                    <td className="number" title={tokenText(t.tokens)}>
                      {t.tokens ? t.tokens.total : ""}
                    </td>
                    <td>{formatTime(t.start_time)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {current && <TraceWaterfall key={current} traceId={current} />}
        </div>
      )}
    </>
  );
}

/** The run page's traces section; none at all for a run without traces (most runs make no LLM calls). */
export function RunTraces({ runId }: { runId: string }) {
  const { data, error } = useApi<TraceList>("/api/traces", { run_id: runId });
  if (!error && (!data || data.traces.length === 0)) return null;
  return (
    <section className="card" data-testid="run-traces">
      <h2>LLM traces</h2>
      <ErrorNote error={error} />
      {data && <TraceTable traces={data.traces} />}
    </section>
  );
}
