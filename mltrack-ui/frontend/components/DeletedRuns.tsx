"use client";

// "Show deleted runs" on the runs page: MLflow's soft-deleted runs of the experiment, each with a
// Restore button (mltrack gc removes them for good).

import { useState } from "react";

import { errorText, type RunState, sendJson } from "@/lib/api";
import { formatTime } from "@/lib/format";
import type { RunsPage } from "@/lib/types";
import { useApi } from "@/lib/useApi";

import "./actions.css";
import { ErrorNote } from "./Common";

function DeletedList({ experiment }: { experiment: string }) {
  const { data, error, loading } = useApi<RunsPage>("/api/runs", {
    experiment_ids: experiment,
    include_deleted: true,
    filter: "",
    page_size: 500,
  });
  const [restored, setRestored] = useState<string[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const restore = async (runId: string) => {
    setProblem(null);
    try {
      await sendJson<RunState>("POST", `/api/runs/${encodeURIComponent(runId)}/restore`);
      setRestored((r) => [...r, runId]);
    } catch (e) {
      setProblem(errorText(e));
    }
  };
  const deleted = (data?.runs ?? []).filter((r) => r.lifecycle_stage === "deleted");
  return (
    <>
      <ErrorNote error={error ?? problem} />
      {loading && <p className="muted">Loading…</p>}
      {data && deleted.length === 0 && <p className="muted">No deleted runs here.</p>}
      {deleted.length > 0 && (
        <div className="table-wrap">
          <table className="grid" data-testid="deleted-runs">
            <thead>
              <tr>
                <th>run</th>
                <th>started</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {deleted.map((r) => (
                <tr key={r.run_id}>
                  <td title={r.run_id}>
                    {r.run_name || r.run_id.slice(0, 8)} <span className="muted">{r.run_id.slice(0, 8)}</span>
                  </td>
                  <td>{formatTime(r.start_time)}</td>
                  <td>
                    {restored.includes(r.run_id) ? (
                      <a href={`/run/?id=${encodeURIComponent(r.run_id)}`}>restored: open</a>
                    ) : (
                      <button type="button" onClick={() => void restore(r.run_id)} data-testid="restore-run">
                        Restore
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function DeletedRuns({ experiment }: { experiment: string }) {
  const [shown, setShown] = useState(false);
  return (
    <div className="deleted-runs">
      <label>
        <input type="checkbox" checked={shown} onChange={(e) => setShown(e.target.checked)} data-testid="show-deleted" /> Show deleted runs
      </label>
      {shown && <DeletedList experiment={experiment} />}
    </div>
  );
}
