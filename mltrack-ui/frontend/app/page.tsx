"use client";

import { ErrorNote, Loading, Section, StatusBadge } from "@/components/Common";
import { RunLink } from "@/components/RunLink";
import { formatDuration, formatTime } from "@/lib/format";
import type { Summary } from "@/lib/types";
import { useApi } from "@/lib/useApi";

export default function Dashboard() {
  const { data, error, loading } = useApi<Summary>("/api/summary");
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
          <Section title="Recent runs">
            <table className="grid" data-testid="recent-runs">
              <thead>
                <tr>
                  <th>run</th>
                  <th>status</th>
                  <th>started</th>
                  <th>duration</th>
                  <th>experiment</th>
                </tr>
              </thead>
              <tbody>
                {data.recent_runs.map((run) => (
                  <tr key={run.run_id}>
                    <td>
                      <RunLink runId={run.run_id} name={run.run_name} />
                    </td>
                    <td>
                      <StatusBadge status={run.status} />
                    </td>
                    <td>{formatTime(run.start_time)}</td>
                    <td>{formatDuration(run.start_time, run.end_time)}</td>
                    <td>{run.experiment_id}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <p className="muted">store: {data.tracking_uri}</p>
        </>
      )}
    </>
  );
}
