"use client";

// LLM traces per experiment (MLflow traces): pick an experiment, then a trace to see its span waterfall.

import { useRouter, useSearchParams } from "next/navigation";
import { Suspense } from "react";

import { ErrorNote } from "@/components/Common";
import { TraceList } from "@/components/TraceView";
import type { Experiment } from "@/lib/types";
import { useApi } from "@/lib/useApi";

function TracesView() {
  const experiment = useSearchParams().get("experiment") ?? "";
  const router = useRouter();
  const experiments = useApi<Experiment[]>("/api/experiments");
  const pick = (id: string) => router.replace(id ? `/traces/?experiment=${encodeURIComponent(id)}` : "/traces/");
  return (
    <>
      <h1>Traces</h1>
      <div className="toolbar">
        <label htmlFor="trace-experiment">Experiment</label>
        <select id="trace-experiment" value={experiment} onChange={(e) => pick(e.target.value)} data-testid="trace-experiment">
          <option value="">all experiments</option>
          {(experiments.data ?? []).map((e) => (
            <option key={e.experiment_id} value={e.experiment_id}>
              {e.name}
            </option>
          ))}
        </select>
      </div>
      <ErrorNote error={experiments.error} />
      <TraceList
        key={experiment}
        experimentIds={experiment}
        emptyText="No traces yet. LangChain calls made during a run with mltrack.autolog('langchain') are recorded as MLflow traces."
      />
    </>
  );
}

export default function TracesPage() {
  return (
    <Suspense fallback={<p className="muted">Loading…</p>}>
      <TracesView />
    </Suspense>
  );
}
