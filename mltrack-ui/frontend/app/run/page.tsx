"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";

import { ArtifactBrowser } from "@/components/ArtifactBrowser";
import { ErrorNote, KeyValues, Loading, MetricValues, Panels, Section, StatusBadge } from "@/components/Common";
import { MetricPanel } from "@/components/MetricPanel";
import { RunActions } from "@/components/RunActions";
import { RunTraces } from "@/components/TraceView";
import { Updated } from "@/components/Updated";
import { When } from "@/components/When";
import { formatDuration } from "@/lib/format";
import { runColour, shortId } from "@/lib/runColour";
import type { Panel, RunDetail } from "@/lib/types";
import { useApi } from "@/lib/useApi";

/** A running run's page asks again this often; a finished one is asked once. */
const LIVE_REFRESH_MS = 3000;

const TABS = ["overview", "charts", "artifacts"] as const;

function RunView() {
  const runId = useSearchParams().get("id") ?? "";
  const [tab, setTab] = useState<(typeof TABS)[number]>("overview");
  const path = runId ? `/api/runs/${encodeURIComponent(runId)}` : null;
  const [live, setLive] = useState(false);
  const { data: run, error, loading, updatedAt } = useApi<RunDetail>(path, {}, { refreshMs: live ? LIVE_REFRESH_MS : null });
  const panels = useApi<Panel[]>(path && `${path}/panels`);
  const running = run?.status === "RUNNING";
  // Poll only while the run is RUNNING: the answer that says it ended stops the polling.
  if (run && running !== live) setLive(running);

  if (!runId) return <p className="error">No run id given.</p>;
  const metricKeys = Object.keys(run?.metrics ?? {}).sort();
  return (
    <>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {run && (
        <>
          <h1 data-testid="run-name" title={`run ${run.run_id}`}>
            <span className="run-dot" style={{ background: runColour(run.run_id) }} />
            {run.run_name || shortId(run.run_id)}
          </h1>
          <p className="run-header">
            <StatusBadge status={run.status} /> <span className="muted">experiment </span>
            <Link
              prefetch={false}
              href={`/runs/?experiment=${encodeURIComponent(run.experiment_id)}`}
              title={`experiment ${run.experiment_id}`}
              data-testid="run-experiment"
            >
              {run.experiment_name ?? run.experiment_id}
            </Link>
            <span className="muted" title={run.run_id}>
              {" "}
              · id {shortId(run.run_id)} · started <When at={run.start_time} />
            </span>{" "}
            {(live || running) && <Updated at={updatedAt} live={running} />}
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
                      "run id": run.run_id,
                      started: run.start_time ? new Date(run.start_time).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "",
                      ended: run.end_time ? new Date(run.end_time).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "",
                      duration: formatDuration(run.start_time, run.end_time),
                      user: run.user_id,
                      "artifact location": run.artifact_uri,
                    }}
                  />
                </Section>
                <Section title="Metrics (latest)">
                  <MetricValues values={run.metrics} />
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
              <RunActions key={run.run_id} run={run} />
              <RunTraces runId={run.run_id} />
            </>
          )}
          {tab === "charts" && (
            <MetricPanel
              metricKeys={metricKeys}
              runIds={[run.run_id]}
              runLabels={{ [run.run_id]: run.run_name || shortId(run.run_id) }}
              refreshMs={running ? LIVE_REFRESH_MS : null}
            />
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
