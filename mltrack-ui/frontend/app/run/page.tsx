"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";

import { ArtifactBrowser } from "@/components/ArtifactBrowser";
import { ErrorNote, KeyValues, Loading, Panels, Section, StatusBadge } from "@/components/Common";
import { MetricChart } from "@/components/MetricChart";
import { formatDuration, formatTime } from "@/lib/format";
import type { Panel, RunDetail } from "@/lib/types";
import { useApi } from "@/lib/useApi";

const TABS = ["overview", "charts", "artifacts"] as const;

function RunView() {
  const runId = useSearchParams().get("id") ?? "";
  const [tab, setTab] = useState<(typeof TABS)[number]>("overview");
  const path = runId ? `/api/runs/${encodeURIComponent(runId)}` : null;
  const { data: run, error, loading } = useApi<RunDetail>(path);
  const panels = useApi<Panel[]>(path && `${path}/panels`);

  if (!runId) return <p className="error">No run id given.</p>;
  const metricKeys = Object.keys(run?.metrics ?? {}).sort();
  return (
    <>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {run && (
        <>
          <h1 data-testid="run-name">{run.run_name || run.run_id}</h1>
          <p>
            <StatusBadge status={run.status} /> <span className="muted">run {run.run_id} · experiment </span>
            <Link prefetch={false} href={`/runs/?experiment=${encodeURIComponent(run.experiment_id)}`}>{run.experiment_id}</Link>
          </p>
          <div className="tabs">
            {TABS.map((t) => (
              <button key={t} type="button" className={tab === t ? "active" : undefined} onClick={() => setTab(t)}>
                {t}
              </button>
            ))}
          </div>
          {tab === "overview" && (
            <>
              <div className="two">
                <Section title="Run">
                  <KeyValues
                    values={{
                      started: formatTime(run.start_time),
                      ended: formatTime(run.end_time),
                      duration: formatDuration(run.start_time, run.end_time),
                      user: run.user_id,
                      "artifact location": run.artifact_uri,
                    }}
                  />
                </Section>
                <Section title="Metrics (latest)">
                  <KeyValues values={run.metrics} />
                </Section>
                <Section title="Parameters">
                  <KeyValues values={run.params} />
                </Section>
                <Section title="Tags">
                  <KeyValues values={run.tags} />
                </Section>
                <Section title="System">
                  <KeyValues values={run.system} />
                </Section>
              </div>
              <Panels panels={panels.data ?? []} />
            </>
          )}
          {tab === "charts" && (
            <div className="charts">
              {metricKeys.length === 0 && <p className="muted">This run has no metrics.</p>}
              {metricKeys.map((key) => (
                <MetricChart key={key} metricKey={key} runIds={[run.run_id]} runNames={{ [run.run_id]: run.run_name ?? "" }} />
              ))}
            </div>
          )}
          {tab === "artifacts" && <ArtifactBrowser runId={run.run_id} />}
        </>
      )}
    </>
  );
}

export default function RunPage() {
  return (
    <Suspense fallback={<p className="muted">Loading…</p>}>
      <RunView />
    </Suspense>
  );
}
