"use client";

import Link from "next/link";

import { ErrorNote, Loading, Section, StatusBadge } from "@/components/Common";
import { Num } from "@/components/Num";
import { When } from "@/components/When";
import { formatDuration } from "@/lib/format";
import { runColours, runLabels } from "@/lib/runColour";
import type { Summary } from "@/lib/types";
import { useApi } from "@/lib/useApi";

function runHref(runId: string): string {
  return `/run/?id=${encodeURIComponent(runId)}`;
}

export default function Dashboard() {
  const { data, error, loading } = useApi<Summary>("/api/summary");
  const names = data?.experiment_names ?? {};
  const labels = runLabels(data?.recent_runs ?? []);
  // one set for the page: a run in both tables has one colour
  const colours = runColours([...(data?.recent_runs ?? []).map((r) => r.run_id), ...(data?.best_metrics ?? []).map((m) => m.run_id)]);
  const totalRuns = Object.values(data?.status_counts ?? {}).reduce((a, b) => a + b, 0);
  return (
    <>
      <h1>Dashboard</h1>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && (
        <>
          <div className="cards" data-testid="status-counts">
            <div className="card">
              <div className="muted">experiments</div>
              <div className="stat">{data.experiments}</div>
            </div>
            <div className="card">
              <div className="muted">runs</div>
              <div className="stat">{totalRuns}</div>
            </div>
            <div className="card">
              <div className="muted">registered models</div>
              <div className="stat">{data.models}</div>
            </div>
            {Object.entries(data.status_counts).map(([status, count]) => (
              <div className="card" key={status}>
                <StatusBadge status={status} />
                <div className="stat">{count}</div>
              </div>
            ))}
          </div>
          <div className="dash-grid">
            <Section title="Recent runs" wide>
              <div className="table-wrap">
              <table className="grid" data-testid="recent-runs">
                <thead>
                  <tr>
                    <th>run</th>
                    <th>experiment</th>
                    <th>status</th>
                    <th>started</th>
                    <th>duration</th>
                  </tr>
                </thead>
                <tbody>
                  {data.recent_runs.map((run) => (
                    <tr key={run.run_id}>
                      <td title={`run ${run.run_id}`}>
                        <span className="run-dot" style={{ background: colours[run.run_id] }} />
                        <Link prefetch={false} href={runHref(run.run_id)} data-testid="run-link">
                          {labels[run.run_id]}
                        </Link>
                      </td>
                      <td title={`experiment ${run.experiment_id}`} data-testid="run-experiment">
                        <Link prefetch={false} href={`/runs/?experiment=${encodeURIComponent(run.experiment_id)}`}>
                          {run.experiment_name ?? names[run.experiment_id] ?? run.experiment_id}
                        </Link>
                      </td>
                      <td>
                        <StatusBadge status={run.status} />
                      </td>
                      <td>
                        <When at={run.start_time} />
                      </td>
                      <td>{formatDuration(run.start_time, run.end_time)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              </div>
            </Section>
            <Section title="Experiments">
              <table className="grid" data-testid="dashboard-experiments">
                <thead>
                  <tr>
                    <th>experiment</th>
                    <th className="num">runs</th>
                    <th className="num">running</th>
                    <th className="num">failed</th>
                  </tr>
                </thead>
                <tbody>
                  {(data.experiment_list ?? []).map((e) => (
                    <tr key={e.experiment_id}>
                      <td title={`experiment ${e.experiment_id}`}>
                        <Link prefetch={false} href={`/runs/?experiment=${encodeURIComponent(e.experiment_id)}`}>
                          {e.name}
                        </Link>
                      </td>
                      <td className="num">{Object.values(e.run_counts).reduce((a, b) => a + b, 0)}</td>
                      <td className="num">{e.run_counts.RUNNING ?? 0}</td>
                      <td className="num">{e.run_counts.FAILED ?? 0}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p>
                <Link prefetch={false} href="/experiments/">
                  all {data.experiments} experiments →
                </Link>
              </p>
            </Section>
            {(data.best_metrics ?? []).length > 0 && (
              <Section title="Best metrics">
                <table className="grid" data-testid="best-metrics">
                  <thead>
                    <tr>
                      <th>metric</th>
                      <th className="num">best</th>
                      <th>run</th>
                      <th>experiment</th>
                    </tr>
                  </thead>
                  <tbody>
                    {(data.best_metrics ?? []).map((m) => (
                      <tr key={m.key}>
                        <td title={`${m.goal === "min" ? "lowest" : "highest"} latest value among ${m.runs} runs`}>
                          {m.key} <span className="muted">{m.goal === "min" ? "↓" : "↑"}</span>
                        </td>
                        <td className="num">
                          <Num value={m.value} />
                        </td>
                        <td title={`run ${m.run_id}`}>
                          <span className="run-dot" style={{ background: colours[m.run_id] }} />
                          <Link prefetch={false} href={runHref(m.run_id)}>
                            {m.run_name || m.run_id.slice(0, 8)}
                          </Link>
                        </td>
                        <td title={`experiment ${m.experiment_id}`}>{m.experiment_name ?? names[m.experiment_id] ?? m.experiment_id}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Section>
            )}
          </div>
          <p className="muted">store: {data.tracking_uri}</p>
        </>
      )}
    </>
  );
}
